"""kubectl_state.control_plane.create and .delete, run by real `ansible-playbook` over SSH on real hosts.

The hosts are network namespaces (tests/lifecycle/hosts.py): h1-h3 run etcd members, h1 and
h2 also run API server replicas (the Kubernetes API test server), h4 runs HAProxy, the fixed
API endpoint. kubectl then writes and reads through the endpoint, etcd_info counts the voting
members, a second create changes nothing, and delete leaves no process and no data behind.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.etcd_cluster import EtcdBinaryMissing
from tests.integration.test_collection_modules import SCRIPTS, ansible_env, playbook, task_result
from tests.lifecycle.control_plane import GROUPS, kubeconfig_path, role_vars
from tests.lifecycle.hosts import HostLab
from tests.lifecycle.lab_fixture import lab_or_skip

# Three playbook runs over SSH on an otherwise idle 2-core machine: about three minutes; the
# limit leaves room for a machine that is busy with other work.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

KUBECTL = "/usr/bin/kubectl"
RECAP = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.MULTILINE)


@pytest.fixture(scope="module")
def lab() -> Iterator[HostLab]:
    yield from lab_or_skip(4)


def run_playbook(lab: HostLab, name: str, extra_vars: Path, inventory: Path) -> tuple[str, dict[str, tuple[int, ...]]]:
    env = ansible_env()
    env.update(
        ANSIBLE_PIPELINING="True",
        ANSIBLE_FORKS="10",
        # Per run: SSH control sockets are keyed by address, which another run may reuse later.
        ANSIBLE_SSH_CONTROL_PATH_DIR=str(lab.workdir / "ssh-cp"),
    )
    proc = subprocess.run(
        [str(SCRIPTS / "ansible-playbook"), "-i", str(inventory), "-e", f"@{extra_vars}",
         f"kubectl_state.control_plane.{name}"],
        capture_output=True, text=True, env=env, timeout=600, check=False, cwd=lab.workdir,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    recap = {m[0]: tuple(int(x) for x in m[1:]) for m in RECAP.findall(output)}
    assert set(recap) == {"h1", "h2", "h3", "h4"}, output[-3000:]
    return output, recap


def kubectl(kubeconfig: Path, *args: str) -> str:
    proc = subprocess.run([KUBECTL, "--kubeconfig", str(kubeconfig), *args], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def wait_for_no_processes(lab: HostLab, timeout: float = 30.0) -> dict[str, list[str]]:
    deadline = time.monotonic() + timeout
    while True:
        left = {h: p for h, p in lab.processes().items() if p}
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.5)


def test_create_then_delete_a_control_plane_on_network_namespace_hosts(lab: HostLab, tmp_path: Path) -> None:
    if not Path(KUBECTL).exists():
        pytest.skip("kubectl is not installed")
    try:
        variables = role_vars(lab)
    except EtcdBinaryMissing as exc:
        pytest.skip(str(exc))
    extra_vars = tmp_path / "vars.yml"
    extra_vars.write_text(yaml.safe_dump(variables))
    inventory = lab.write_inventory(tmp_path / "inventory.yml", groups=GROUPS)
    addresses = {h.name: h.address for h in lab.hosts}

    output, recap = run_playbook(lab, "create", extra_vars, inventory)
    assert "form the etcd cluster with h1" in output  # the plan is printed first
    assert all(r[3] == 0 and r[2] == 0 for r in recap.values()), recap
    assert all(recap[h][1] > 0 for h in ("h1", "h2", "h3", "h4")), recap

    # Through the endpoint: the kubeconfig the replica on h1 wrote, pointed at HAProxy on h4.
    # The certificate's SANs include h4's address, so TLS is verified.
    config = yaml.safe_load(kubeconfig_path(lab, "h1").read_text())
    assert config["clusters"][0]["cluster"]["server"] == f"https://{addresses['h1']}:6443"
    config["clusters"][0]["cluster"]["server"] = f"https://{addresses['h4']}:6443"
    endpoint_config = tmp_path / "endpoint.kubeconfig"
    endpoint_config.write_text(yaml.safe_dump(config))
    os.chmod(endpoint_config, 0o600)
    kubectl(endpoint_config, "create", "configmap", "lifecycle", "--from-literal=created-by=create.yml")
    assert kubectl(endpoint_config, "get", "configmap", "lifecycle", "-o", "jsonpath={.data.created-by}") \
        == "create.yml"

    info = task_result(playbook(tmp_path / "etcd-info", [{"kubectl_state.control_plane.etcd_info": {
        "etcd_endpoints": [f"http://{addresses[h]}:2379" for h in GROUPS["etcd"]]}}]))
    assert not info.get("failed"), info
    assert sorted(m["name"] for m in info["members"]) == ["h1", "h2", "h3"]
    assert info["quorum"]["voters"] == 3 and info["quorum"]["learners"] == 0, info["quorum"]
    assert info["quorum"]["has_quorum"] is True

    _, recap = run_playbook(lab, "create", extra_vars, inventory)
    assert all(r[1] == 0 for r in recap.values()), f"second create changed something: {recap}"

    # Both replicas are in the endpoint's backend (kept in its configuration file too).
    haproxy_cfg = (lab.workdir / "hosts/h4/api-endpoint/haproxy.cfg").read_text()
    for host in GROUPS["control_plane"]:
        assert f"server {host} {addresses[host]}:6443" in haproxy_cfg, haproxy_cfg

    _, recap = run_playbook(lab, "delete", extra_vars, inventory)
    assert all(r[3] == 0 and r[2] == 0 for r in recap.values()), recap
    assert wait_for_no_processes(lab) == {}
    hosts_root = lab.workdir / "hosts"
    left = sorted(str(p.relative_to(hosts_root)) for p in hosts_root.rglob("*") if not p.is_dir())
    assert left == [], left
    for host in ("h1", "h2", "h3"):
        assert not (hosts_root / host / "etcd").exists()
