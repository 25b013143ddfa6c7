"""kubectl_state.control_plane.pivot at the api level, run by real `ansible-playbook` over SSH on real hosts.

Five network-namespace hosts: the bootstrap control plane on h1 (etcd and the Kubernetes API test
server), the target's etcd on h2-h4 and API servers on h2-h3, HAProxy on h5. The bootstrap is made
first (pivot_bootstrap_only) and given objects through the endpoint. Three refusals change nothing
on the target: an unknown pivot_level, an etcd-level pivot onto a host with etcd data, and a
selector state_migrate rejects. Then the pivot copies the namespace `pivot` (a configmap, a secret, a
CRD's custom resource) into the target with state_migrate and switches the endpoint: the target
serves them through it, what the filter left out stays behind, three members vote, and h1 runs
nothing and holds no data. (The etcd level runs in the molecule scenario `pivot`.)
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.etcd_cluster import EtcdBinaryMissing
from tests.integration.test_collection_modules import playbook, task_result
from tests.integration.test_lifecycle_create import KUBECTL, kubectl
from tests.lifecycle.control_plane import role_vars
from tests.lifecycle.hosts import HostLab
from tests.lifecycle.lab_fixture import lab_or_skip
from tests.lifecycle.runner import PlaybookRun, client_urls, run_playbook, write_inventory

# Bootstrap, three refused runs, the pivot, the target's delete: ten to twenty minutes on 2 busy cores.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]

GROUPS = {"bootstrap": ["h1"], "etcd": ["h2", "h3", "h4"], "control_plane": ["h2", "h3"], "api_endpoint": ["h5"]}
TARGET = ("h2", "h3", "h4")
TOKEN = "kubectl-state-test-token"
CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.pivot.example.com"},
    "spec": {"group": "pivot.example.com", "scope": "Namespaced",
             "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
             "versions": [{"name": "v1", "served": True, "storage": True,
                           "schema": {"openAPIV3Schema": {"type": "object",
                                                          "x-kubernetes-preserve-unknown-fields": True}}}]},
}


@pytest.fixture(scope="module")
def lab() -> Iterator[HostLab]:
    yield from lab_or_skip(5)


def endpoint_kubeconfig(lab: HostLab, path: Path) -> Path:
    """A kubeconfig for the endpoint on h5 with the test server's token (the pivot derives its own from it)."""
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "lab",
        "clusters": [{"name": "lab", "cluster": {"server": f"https://{lab.host('h5').address}:6443",
                                                 "certificate-authority": str(lab.workdir / "pki/apiserver.crt")}}],
        "users": [{"name": "admin", "user": {"token": TOKEN}}],
        "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "admin"}}],
    }
    path.write_text(yaml.safe_dump(config))
    os.chmod(path, 0o600)
    return path


def write_vars(path: Path, variables: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(variables))
    return path


def passed(run: PlaybookRun) -> PlaybookRun:
    assert run.returncode == 0, run.output[-6000:]
    assert all(r[2] == 0 and r[3] == 0 for r in run.recap.values()), run.recap
    return run


def refused(run: PlaybookRun, error: str, lab: HostLab) -> None:
    """Failed with `error` in its output, and the target hosts untouched."""
    assert run.returncode != 0, run.output[-4000:]
    assert error in run.output, run.output[-4000:]
    assert all(run.recap.get(h, (0, 0))[1] == 0 for h in TARGET), run.recap
    for host in TARGET:
        assert not (lab.workdir / "hosts" / host / "etcd").exists(), host
        assert not (lab.workdir / "hosts" / host / "kube-apiserver").exists(), host


def test_pivot_at_the_api_level_on_network_namespace_hosts(lab: HostLab, tmp_path: Path) -> None:
    if not Path(KUBECTL).exists():
        pytest.skip("kubectl is not installed")
    try:
        variables = role_vars(lab)
    except EtcdBinaryMissing as exc:
        pytest.skip(str(exc))
    kubeconfig = endpoint_kubeconfig(lab, lab.workdir / "endpoint.kubeconfig")
    variables.update(pivot_dir=str(lab.workdir / "pivot"), pivot_kubeconfig=str(kubeconfig), pivot_level="api",
                     pivot_migrate_namespaces=["pivot"])
    extra_vars = write_vars(tmp_path / "vars.yml", variables)
    inventory = write_inventory(lab, tmp_path / "inventory.yml", GROUPS)
    hosts = lab.workdir / "hosts"

    # The bootstrap and the endpoint, nothing on the target yet.
    boot = passed(run_playbook(lab, "pivot", inventory, write_vars(tmp_path / "boot.yml", {
        **variables, "pivot_bootstrap_only": True}), timeout=1200))
    assert any("form the etcd cluster with h1 (the bootstrap's own" in line for line in boot.plan()), boot.plan()
    assert (hosts / "h1" / "etcd").is_dir() and not (hosts / "h2" / "etcd").exists()

    kubectl(kubeconfig, "create", "namespace", "pivot")
    kubectl(kubeconfig, "-n", "pivot", "create", "configmap", "settings", "--from-literal=n=1")
    kubectl(kubeconfig, "-n", "pivot", "create", "secret", "generic", "db", "--from-literal=password=s3cret")
    kubectl(kubeconfig, "create", "configmap", "stays-behind", "--from-literal=n=2")
    crd = tmp_path / "crd.yaml"
    crd.write_text(yaml.safe_dump(CRD))
    kubectl(kubeconfig, "apply", "-f", str(crd))
    kubectl(kubeconfig, "wait", "--for=condition=Established", "crd/widgets.pivot.example.com", "--timeout=60s")
    widget = tmp_path / "widget.yaml"
    widget.write_text(yaml.safe_dump({"apiVersion": "pivot.example.com/v1", "kind": "Widget",
                                      "metadata": {"name": "w1", "namespace": "pivot"}, "spec": {"size": 3}}))
    kubectl(kubeconfig, "apply", "-f", str(widget))

    # Refused before anything on the target changes.
    refused(run_playbook(lab, "pivot", inventory, write_vars(tmp_path / "bogus.yml", {
        **variables, "pivot_level": "bogus"})), "unknown pivot_level 'bogus'", lab)
    leftover = hosts / "h3" / "etcd" / "data" / "member"
    leftover.mkdir(parents=True)
    try:
        run = run_playbook(lab, "pivot", inventory, write_vars(tmp_path / "etcd.yml", {
            **variables, "pivot_level": "etcd"}))
        assert run.returncode != 0 and "UnsafeOperationError" in run.output, run.output[-4000:]
        assert "data dirs on h3" in run.output, run.output[-4000:]
        assert all(run.recap.get(h, (0, 0))[1] == 0 for h in TARGET), run.recap
    finally:
        shutil.rmtree(hosts / "h3")
    refused(run_playbook(lab, "pivot", inventory, write_vars(tmp_path / "selector.yml", {
        **variables, "pivot_migrate_selector": "app in (web"})), "Invalid label selector", lab)
    assert kubectl(kubeconfig, "-n", "pivot", "get", "configmap", "settings", "-o", "jsonpath={.data.n}") == "1"

    # The pivot itself.
    run = passed(run_playbook(lab, "pivot", inventory, extra_vars, timeout=1800))
    assert any("copy the chosen objects from h1 into the target (state_migrate)" in line for line in run.plan()), \
        run.plan()

    # Through the endpoint, now the target's: the namespace's objects, the CRD, and not what was filtered out.
    assert kubectl(kubeconfig, "-n", "pivot", "get", "configmap", "settings", "-o", "jsonpath={.data.n}") == "1"
    assert kubectl(kubeconfig, "-n", "pivot", "get", "secret", "db", "-o", "jsonpath={.data.password}") \
        == "czNjcmV0"
    assert kubectl(kubeconfig, "-n", "pivot", "get", "widgets.pivot.example.com", "w1",
                   "-o", "jsonpath={.spec.size}") == "3"
    assert "stays-behind" not in kubectl(kubeconfig, "get", "configmaps", "-o", "name")
    kubectl(kubeconfig, "-n", "pivot", "create", "configmap", "after-pivot", "--from-literal=n=new")
    haproxy_cfg = (hosts / "h5" / "api-endpoint" / "haproxy.cfg").read_text()
    servers = sorted(line.split()[1] for line in haproxy_cfg.splitlines() if line.strip().startswith("server "))
    assert servers == ["h2", "h3"], haproxy_cfg

    info = task_result(playbook(tmp_path / "etcd-info", [{"kubectl_state.control_plane.etcd_info": {
        "etcd_endpoints": client_urls(lab, TARGET)}}]))
    assert sorted(m["name"] for m in info["members"]) == list(TARGET), info["members"]
    assert info["quorum"]["voters"] == 3 and info["quorum"]["has_quorum"] is True, info["quorum"]

    # Nothing of the control plane on the bootstrap host.
    assert lab.processes()["h1"] == []
    assert sorted(p.name for p in (hosts / "h1").iterdir()) == []

    # The target's turn to go (and the lab's processes with it).
    passed(run_playbook(lab, "delete", inventory, extra_vars))
