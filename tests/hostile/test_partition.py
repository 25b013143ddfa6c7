"""A host cut from the others during a lifecycle step: etcd is never left without quorum by us.

The lab of tests/lifecycle (network namespaces on a bridge, reached over SSH) runs a control
plane made by the collection's create playbook: etcd on h1-h3. Then h2's link is taken down
inside its namespace, so h2 is alive but unreachable, and the etcd_member module is asked
to remove h3. With h2 cut, only h1 and h3 vote; without h3 the cluster would have two voters
of which one answers, below its quorum of two. The module must refuse and remove nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from kubectl_state.core.etcd.client import EtcdClient
from tests.etcd_cluster import EtcdBinaryMissing
from tests.integration.test_collection_modules import playbook, task_result
from tests.integration.test_lifecycle_create import run_playbook
from tests.lifecycle.control_plane import GROUPS, role_vars
from tests.lifecycle.hosts import HostLab
from tests.lifecycle.lab_fixture import lab_or_skip

# Lab set-up, one create run over SSH and one module run: about a minute and a half here.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(480)]


@pytest.fixture
def lab() -> Iterator[HostLab]:
    yield from lab_or_skip(4)


def test_removing_a_member_while_another_is_cut_off_is_refused(lab: HostLab, tmp_path: Path) -> None:
    try:
        variables = role_vars(lab)
    except EtcdBinaryMissing as exc:
        pytest.skip(str(exc))
    extra_vars = tmp_path / "vars.yml"
    extra_vars.write_text(yaml.safe_dump(variables))
    inventory = lab.write_inventory(tmp_path / "inventory.yml", groups=GROUPS)
    run_playbook(lab, "create", extra_vars, inventory)
    endpoints = [f"http://{lab.host(h).address}:2379" for h in GROUPS["etcd"]]
    reachable = [endpoints[0], endpoints[2]]
    with EtcdClient(endpoints) as etcd:
        before = sorted((m.name, m.id) for m in etcd.member_list())
    assert [name for name, _ in before] == ["h1", "h2", "h3"]

    lab.host("h2").run("ip", "link", "set", "eth0", "down")
    try:
        run = playbook(tmp_path / "remove", [{"kubectl_state.control_plane.etcd_member": {
            "etcd_endpoints": endpoints, "name": "h3", "state": "absent"}}])
        result = task_result(run)
    finally:
        lab.host("h2").run("ip", "link", "set", "eth0", "up")

    assert not run.ok
    assert result["failed"] is True
    assert result["exit_status"] == 6, result  # UNSAFE: refused, not a crash or a timeout
    assert "quorum" in result["msg"], result["msg"]
    assert "h3" in result["msg"], result["msg"]
    assert "Traceback" not in run.output
    with EtcdClient(reachable) as etcd:
        assert sorted((m.name, m.id) for m in etcd.member_list()) == before
    assert any("etcd" in cmd for cmd in lab.processes()["h3"]), "h3's etcd should still run"
