"""state_migrate run by real `ansible-playbook` between two API test servers on etcds of their
own: check mode plans and touches nothing, a move empties the source, a re-run changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.apiserver.testing import kubectl_json, unique
from tests.helpers import create, owner_ref
from tests.integration.test_collection_modules import playbook, task_result

pytestmark = pytest.mark.timeout(240)


def names(kubeconfig: str, resource: str, ns: str) -> set[str]:
    return {item["metadata"]["name"] for item in kubectl_json(kubeconfig, "get", resource, "-n", ns)["items"]}


def test_state_migrate_plans_in_check_mode_then_moves_once(kube_cluster_factory: Any, etcd_cluster_factory: Any,
                                                           tmp_path: Path) -> None:
    a = kube_cluster_factory().kubeconfig
    b = kube_cluster_factory(etcd_endpoints=etcd_cluster_factory().endpoints).kubeconfig
    ns = unique("ansible-migrate")
    create(a, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    (owner,) = create(a, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner", "namespace": ns},
                          "data": {"role": "owner"}})
    create(a, {"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "dependent", "namespace": ns, "ownerReferences": [owner_ref(owner)]},
               "data": {"role": "dependent"}})
    task = {"kubectl_state.control_plane.state_migrate": {
        "kubeconfig": a, "to_kubeconfig": b, "namespaces": [ns], "move": True,
        "journal": str(tmp_path / "journal.json")}}

    run = playbook(tmp_path / "check", [task], check=True)
    assert run.ok, run.output
    preview = task_result(run)
    assert preview["changed"] is False
    assert preview["report"]["result"] == "dry-run"
    assert preview["summary"]["planned"] == 3  # the namespace and both config maps
    assert kubectl_json(b, "get", "namespaces", "--field-selector", f"metadata.name={ns}")["items"] == []
    assert {"owner", "dependent"} <= names(a, "configmaps", ns)

    run = playbook(tmp_path / "real", [task, task])
    assert run.ok, run.output
    first, second = task_result(run, 0), task_result(run, 1)
    assert first["changed"] is True, first
    assert first["summary"]["moved"] == 3
    assert first["summary"]["deletedFromSource"] == 3
    assert second["changed"] is False, second
    assert second["summary"]["planned"] == 0

    moved = {item["metadata"]["name"]: item for item in kubectl_json(b, "get", "configmaps", "-n", ns)["items"]}
    assert {"owner", "dependent"} <= set(moved)
    # Relinked: the dependent's owner is B's copy of the owner, not A's uid.
    (ref,) = moved["dependent"]["metadata"]["ownerReferences"]
    assert ref["uid"] == moved["owner"]["metadata"]["uid"] != owner["metadata"]["uid"]
    assert kubectl_json(a, "get", "namespaces", "--field-selector", f"metadata.name={ns}")["items"] == []


def test_state_migrate_refuses_bad_pause_rules_before_touching_anything(kube_cluster: str, tmp_path: Path) -> None:
    run = playbook(tmp_path, [{"kubectl_state.control_plane.state_migrate": {
        "kubeconfig": kube_cluster, "to_kubeconfig": kube_cluster,
        "pause_rules": [{"group": "", "kind": "ConfigMap", "path": "metadata.name", "value": "x"}]}}])
    result = task_result(run)
    assert result["failed"], run.output
    assert "identity" in result["msg"]
    assert "Traceback" not in run.output
