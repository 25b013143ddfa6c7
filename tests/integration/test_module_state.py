"""state_export and state_import run by real `ansible-playbook` against the Kubernetes API test
server (or the cluster of $KUBECTL_STATE_TEST_KUBECONFIG)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubectl_state.core.archive.summary import inspect
from tests.apiserver.testing import kubectl, kubectl_json, manifests, unique
from tests.integration.test_collection_modules import playbook, task_result

pytestmark = pytest.mark.timeout(180)


def test_state_export_check_mode_writes_nothing_then_exports_once(kube_cluster: str, tmp_path: Path) -> None:
    ns = unique("ansible-export")
    kubectl(kube_cluster, "create", "-f", "-", stdin=manifests(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": ns},
         "data": {"colour": "blue"}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "token", "namespace": ns},
         "stringData": {"password": "hunter2"}},
    ))
    archive = tmp_path / "out" / "shop.tar.gz"
    archive.parent.mkdir()
    task = {"kubectl_state.control_plane.state_export": {
        "path": str(archive), "namespaces": [ns], "kubeconfig": kube_cluster, "secrets": "skip"}}

    run = playbook(tmp_path / "check", [task], check=True)
    assert run.ok, run.output
    preview = task_result(run)
    assert preview["changed"] is True
    assert preview["objects"] >= 2  # the namespace and the config map, at least
    assert preview["skipped"].get("secrets-skipped") == 1
    assert preview["archive"] is None
    assert list(archive.parent.iterdir()) == []

    run = playbook(tmp_path / "real", [task, task])
    assert run.ok, run.output
    first, second = task_result(run, 0), task_result(run, 1)
    assert first["changed"] is True
    assert first["objects"] == preview["objects"]
    assert second["changed"] is False
    assert second["archive"]["objects"] == first["objects"]
    summary = inspect(archive)
    assert summary.by_namespace[ns] == first["objects"] - 1  # all but the namespace itself
    assert summary.by_resource["configmaps"] >= 1

    overwrite = {"kubectl_state.control_plane.state_export": {
        **task["kubectl_state.control_plane.state_export"], "overwrite": True}}
    run = playbook(tmp_path / "again", [overwrite])
    assert run.ok and task_result(run)["changed"] is True, run.output


def test_state_export_failures_are_plain_messages(kube_cluster: str, tmp_path: Path) -> None:
    run = playbook(tmp_path, [
        {"kubectl_state.control_plane.state_export": {"path": str(tmp_path / "a"), "kubeconfig": kube_cluster,
                                                      "secrets": "encrypt"}},
        {"kubectl_state.control_plane.state_export": {"path": str(tmp_path / "b"), "kubeconfig": kube_cluster,
                                                      "selector": "a in (b"}},
        {"kubectl_state.control_plane.state_export": {"path": str(tmp_path / "c"),
                                                      "kubeconfig": str(tmp_path / "missing")}},
        {"kubectl_state.control_plane.state_export": {"path": str(tmp_path / "no" / "dir" / "x.tar.gz"),
                                                      "kubeconfig": kube_cluster}},
    ], check=True)
    messages = [task_result(run, i).get("msg", "") for i in range(4)]
    assert all(task_result(run, i)["failed"] for i in range(4)), run.output
    assert "needs at least one recipient" in messages[0]
    assert "Traceback" not in run.output
    assert "does not exist" in messages[3]


def test_state_import_check_mode_is_a_dry_run_then_imports_once(kube_cluster: str, tmp_path: Path) -> None:
    ns, copy = unique("ansible-import"), unique("ansible-copy")
    kubectl(kube_cluster, "create", "-f", "-", stdin=manifests(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": ns},
         "data": {"colour": "green"}},
    ))
    archive = tmp_path / "backup"
    run = playbook(tmp_path / "export", [{"kubectl_state.control_plane.state_export": {
        "path": str(archive), "namespaces": [ns], "kubeconfig": kube_cluster}}])
    assert run.ok, run.output

    task = {"kubectl_state.control_plane.state_import": {
        "path": str(archive), "namespace_mapping": {ns: copy}, "kubeconfig": kube_cluster}}
    run = playbook(tmp_path / "check", [task], check=True, diff=True)
    assert run.ok, run.output
    preview = task_result(run)
    assert preview["changed"] is True
    assert preview["report"]["dryRun"] == "server"
    assert preview["counts"]["created"] >= 2
    assert f"ConfigMap {copy}/settings: created" in run.output  # the plan, as the diff
    missing = kubectl(kube_cluster, "get", "namespace", copy, check=False)
    assert missing.returncode != 0

    run = playbook(tmp_path / "real", [task, task])
    assert run.ok, run.output
    assert task_result(run, 0)["changed"] is True
    assert task_result(run, 1)["changed"] is False
    assert task_result(run, 1)["counts"]["failed"] == 0
    restored = kubectl_json(kube_cluster, "get", "configmap", "settings", "-n", copy)
    assert restored["data"] == {"colour": "green"}
