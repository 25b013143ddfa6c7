"""`kubectl state migrate`: two API test servers, each on its own etcd (A the source, B the
target), with a Cluster API-like `clusters.cluster.x-k8s.io` CRD to pause."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.apiserver.fixture import REPO_ROOT
from tests.apiserver.testing import kubectl, kubectl_json, raw_request, unique, wait_until
from tests.helpers import create, create_widget_crd, owner_ref
from tests.helpers import run_cli as run

BLOCK_MOVE = "clusterctl.cluster.x-k8s.io/block-move"
CAPI = "cluster.x-k8s.io"


@pytest.fixture
def clusters(kube_cluster_factory: Any, etcd_cluster_factory: Any, tmp_path: Path) -> dict[str, Any]:
    """A and B on etcds of their own, a namespace in A with an owner chain, a CRD with custom
    resources (one owned by another) and a Cluster API Cluster."""
    a = kube_cluster_factory().kubeconfig
    b = kube_cluster_factory(etcd_endpoints=etcd_cluster_factory().endpoints).kubeconfig
    ns = unique("mig")
    group = f"{unique('g')}.example.com"
    create(a, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    create_widget_crd(a, group)
    create(a, {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"clusters.{CAPI}"},
        "spec": {"group": CAPI, "scope": "Namespaced",
                 "names": {"plural": "clusters", "singular": "cluster", "kind": "Cluster"},
                 "versions": [{"name": "v1beta1", "served": True, "storage": True,
                               "schema": {"openAPIV3Schema": {"type": "object",
                                                              "x-kubernetes-preserve-unknown-fields": True}}}]}})
    kubectl(a, "wait", "--for=condition=Established", f"crd/clusters.{CAPI}", "--timeout=60s")
    (deploy,) = create(a, {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": ns, "labels": {"move": "yes"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}})
    (config,) = create(a, {"apiVersion": "v1", "kind": "ConfigMap",
                           "metadata": {"name": "web-config", "namespace": ns, "labels": {"move": "yes"},
                                        "ownerReferences": [owner_ref(deploy)]}, "data": {"a": "1"}})
    create(a, {"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "web-config-extra", "namespace": ns, "labels": {"move": "yes"},
                            "finalizers": ["example.com/hold"],
                            "ownerReferences": [owner_ref(config, controller=False)]}, "data": {"b": "2"}})
    (w1,) = create(a, {"apiVersion": f"{group}/v1", "kind": "Widget",
                       "metadata": {"name": "w1", "namespace": ns, "labels": {"move": "yes"}}, "spec": {"size": 3}})
    create(a,
           {"apiVersion": f"{group}/v1", "kind": "Widget",
            "metadata": {"name": "w2", "namespace": ns, "labels": {"move": "yes"},
                         "ownerReferences": [owner_ref(w1)]}, "spec": {"size": 1}},
           {"apiVersion": f"{CAPI}/v1beta1", "kind": "Cluster",
            "metadata": {"name": "prod", "namespace": ns, "labels": {"move": "yes"}},
            "spec": {"paused": False, "controlPlaneEndpoint": {"host": "10.0.0.1", "port": 6443}}},
           # Not labelled: left out by -l move=yes.
           {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "stays", "namespace": ns},
            "data": {"c": "3"}})
    return {"a": a, "b": b, "ns": ns, "group": group, "widgets": f"widgets.{group}", "tmp": tmp_path,
            "journal": str(tmp_path / "journal.json")}


def migrate(c: dict[str, Any], *args: str) -> tuple[int, dict[str, Any], str]:
    code, out, err = run("migrate", "--from-kubeconfig", c["a"], "--to-kubeconfig", c["b"],
                         "--journal", c["journal"], "--timeout", "60s", "-n", c["ns"], *args, "-o", "json")
    return code, (json.loads(out) if out.strip() else {}), err


def get(kubeconfig: str, *args: str) -> dict[str, Any] | None:
    result = kubectl(kubeconfig, "get", *args, "-o", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def paused(kubeconfig: str, ns: str) -> Any:
    found = get(kubeconfig, f"clusters.{CAPI}", "prod", "-n", ns)
    return None if found is None else found["spec"].get("paused")


def list_versions(kubeconfig: str, ns: str, widgets: str) -> dict[str, str]:
    """name -> resourceVersion of everything the tests create, to see that nothing was written."""
    out = {}
    for kind in ("configmaps", "deployments.apps", widgets, f"clusters.{CAPI}", "namespaces", "crd"):
        args = [kind] if kind in ("namespaces", "crd") else [kind, "-n", ns]
        for item in kubectl_json(kubeconfig, "get", *args)["items"]:
            out[f"{kind}/{item['metadata']['name']}"] = item["metadata"]["resourceVersion"]
    return out


def unblock_later(c: dict[str, Any], widget: str) -> threading.Thread:
    """Remove the block-move annotation once A shows the Cluster paused, and check that
    nothing had been copied into B yet."""
    seen: dict[str, Any] = {}

    def work() -> None:
        seen["paused"] = wait_until(lambda: paused(c["a"], c["ns"]) is True, timeout=60)
        seen["b_before_unblock"] = get(c["b"], "namespace", c["ns"])
        kubectl(c["a"], "annotate", c["widgets"], widget, "-n", c["ns"], f"{BLOCK_MOVE}-")

    thread = threading.Thread(target=work, daemon=True)
    thread.seen = seen  # type: ignore[attr-defined]
    thread.start()
    return thread


def test_copy_pauses_waits_for_block_move_relinks_owners_and_unpauses_the_source(clusters: dict[str, Any]) -> None:
    c = clusters
    ns = c["ns"]
    kubectl(c["a"], "annotate", c["widgets"], "w1", "-n", ns, f"{BLOCK_MOVE}=provisioning")
    before = list_versions(c["a"], ns, c["widgets"])
    thread = unblock_later(c, "w1")
    archive = c["tmp"] / "kept"
    code, report, err = migrate(c, "--keep", str(archive))
    thread.join(timeout=30)
    assert code == 0, (err, report.get("error"), [o for o in report.get("objects", []) if o["outcome"] != "created"])
    # Paused while the block-move annotation was waited for, and nothing copied meanwhile.
    assert thread.seen["paused"] is True  # type: ignore[attr-defined]
    assert thread.seen["b_before_unblock"] is None  # type: ignore[attr-defined]
    assert report["waitedForBlockMove"] == [f"widgets.{c['group']} {ns}/w1"]
    assert [(p["name"], p["unpausedIn"]) for p in report["paused"]] == [("prod", "source")]

    # B has every object, owners relinked to B's uids.
    deploy = kubectl_json(c["b"], "get", "deployment", "web", "-n", ns)
    config = kubectl_json(c["b"], "get", "configmap", "web-config", "-n", ns)
    extra = kubectl_json(c["b"], "get", "configmap", "web-config-extra", "-n", ns)
    assert config["metadata"]["ownerReferences"][0]["uid"] == deploy["metadata"]["uid"]
    assert extra["metadata"]["ownerReferences"][0]["uid"] == config["metadata"]["uid"]
    w1 = kubectl_json(c["b"], "get", c["widgets"], "w1", "-n", ns)
    w2 = kubectl_json(c["b"], "get", c["widgets"], "w2", "-n", ns)
    assert w2["metadata"]["ownerReferences"][0]["uid"] == w1["metadata"]["uid"]
    assert get(c["b"], "configmap", "stays", "-n", ns) is not None  # no filter: everything in the namespace
    # The copy arrived paused and stays so without --move; A is unpaused (its original value back).
    assert paused(c["b"], ns) is True
    assert paused(c["a"], ns) is False

    # A otherwise untouched: only the Cluster (pause, unpause) and w1 (annotation) were written.
    after = list_versions(c["a"], ns, c["widgets"])
    changed = {key for key in before if before[key] != after.get(key)}
    assert changed == {f"clusters.{CAPI}/prod", f"{c['widgets']}/w1"}
    assert not Path(c["journal"]).exists()
    # --keep: the copy went through an archive, which holds the paused Cluster.
    assert report["archive"] == str(archive)
    assert (archive / "manifest.json").exists()
    kept = (archive / "resources" / f"clusters.{CAPI}" / "namespaces" / ns / "prod.yaml").read_text()
    assert "paused: true" in kept


def test_move_empties_the_source_of_moved_objects_keeps_filtered_out_and_unpauses_the_target(
        clusters: dict[str, Any]) -> None:
    c = clusters
    ns = c["ns"]
    code, report, err = migrate(c, "--move", "-l", "move=yes")
    assert code == 0, (err, report.get("error"), report.get("problems"))
    # Moved: gone from A (the ConfigMap with a finalizer too), in B.
    for kind, name in (("deployment", "web"), ("configmap", "web-config"), ("configmap", "web-config-extra"),
                       (c["widgets"], "w1"), (c["widgets"], "w2"), (f"clusters.{CAPI}", "prod")):
        assert get(c["a"], kind, name, "-n", ns) is None, (kind, name)
        assert get(c["b"], kind, name, "-n", ns) is not None, (kind, name)
    # Filtered out: stays in A, and so does its namespace (copied to B all the same).
    assert get(c["a"], "configmap", "stays", "-n", ns) is not None
    assert get(c["b"], "configmap", "stays", "-n", ns) is None
    assert get(c["a"], "namespace", ns) is not None
    left = {(o["kind"], o["name"]): o["reason"] for o in report["leftBehind"]}
    assert "filtered out" in left[("ConfigMap", "stays")]
    assert "still holds objects" in left[("Namespace", ns)]
    # The CRDs had no instances left in A: moved too.
    assert get(c["a"], "crd", c["widgets"]) is None
    # The copy is unpaused in B.
    assert paused(c["b"], ns) is False
    assert [p["unpausedIn"] for p in report["paused"]] == ["target"]
    assert report["result"] == "succeeded"


def test_failed_import_deletes_nothing_unpauses_the_source_and_reports_the_target(clusters: dict[str, Any]) -> None:
    c = clusters
    ns = c["ns"]
    # B already holds one of the objects, different: refused (--existing=fail is the default).
    create(c["b"], {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
           {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "stays", "namespace": ns},
            "data": {"c": "other"}})
    before = list_versions(c["a"], ns, c["widgets"])
    report_file = c["tmp"] / "report.json"
    code, report, err = migrate(c, "--move", "--report", str(report_file))
    assert code == 1, err
    assert "nothing was deleted" in report["error"]
    assert json.loads(report_file.read_text())["result"] == "failed"
    # Nothing deleted from A, and A unpaused: only the Cluster was written (paused, unpaused).
    after = list_versions(c["a"], ns, c["widgets"])
    assert {k for k in before if before[k] != after.get(k)} == {f"clusters.{CAPI}/prod"}
    assert paused(c["a"], ns) is False
    # The report says what exists in B, object by object.
    objects = {(o["kind"], o["name"]): o for o in report["objects"]}
    assert objects[("ConfigMap", "stays")]["outcome"] == "failed"
    assert objects[("ConfigMap", "stays")]["existsInTarget"] is True  # B's own, untouched
    assert objects[("Deployment", "web")]["existsInTarget"] is True
    assert get(c["b"], "deployment", "web", "-n", ns) is not None
    assert report["deletedFromSource"] == []
    assert any(o["name"] == "stays" and "not moved" in o["reason"] for o in report["leftBehind"])


def test_rerunning_a_killed_migration_unpauses_the_source_and_completes(clusters: dict[str, Any]) -> None:
    c = clusters
    ns = c["ns"]
    kubectl(c["a"], "annotate", c["widgets"], "w1", "-n", ns, f"{BLOCK_MOVE}=provisioning")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "kubectl_state", "migrate", "--from-kubeconfig", c["a"], "--to-kubeconfig", c["b"],
         "--journal", c["journal"], "--timeout", "5m", "-n", ns, "--move"],
        cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: paused(c["a"], ns) is True, timeout=60)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    # SIGKILL runs no cleanup: A stays paused, and the journal says so.
    assert paused(c["a"], ns) is True
    assert json.loads(Path(c["journal"]).read_text())["paused"][0]["name"] == "prod"

    kubectl(c["a"], "annotate", c["widgets"], "w1", "-n", ns, f"{BLOCK_MOVE}-")
    code, report, err = migrate(c)
    assert code == 0, (err, report.get("error"))
    assert [p["name"] for p in report["recoveredPauses"]] == ["prod"]
    assert paused(c["a"], ns) is False
    assert get(c["b"], "deployment", "web", "-n", ns) is not None
    assert not Path(c["journal"]).exists()


def test_sigterm_mid_migration_unpauses_the_source_exits_130_and_writes_the_report(clusters: dict[str, Any]) -> None:
    c = clusters
    ns = c["ns"]
    # The block-move annotation holds the migration after its pauses, so the signal lands there.
    kubectl(c["a"], "annotate", c["widgets"], "w1", "-n", ns, f"{BLOCK_MOVE}=provisioning")
    report_file = c["tmp"] / "interrupted.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "kubectl_state", "migrate", "--from-kubeconfig", c["a"], "--to-kubeconfig", c["b"],
         "--journal", c["journal"], "--timeout", "5m", "-n", ns, "--move", "--report", str(report_file)],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: paused(c["a"], ns) is True, timeout=60)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        kubectl(c["a"], "annotate", c["widgets"], "w1", "-n", ns, f"{BLOCK_MOVE}-")
    assert proc.returncode == 130, err
    assert "interrupted; the source was unpaused" in err
    assert paused(c["a"], ns) is False
    assert not Path(c["journal"]).exists()  # every pause undone: nothing left for a rerun to recover
    report = json.loads(report_file.read_text())
    assert report["interrupted"] is True
    assert report["result"] == "failed"
    assert report["deletedFromSource"] == []
    assert [p["unpausedIn"] for p in report["paused"]] == ["source"]
    assert get(c["b"], "deployment", "web", "-n", ns) is None  # nothing was copied yet, and B says so
    assert report["objects"] == []


def test_dry_run_touches_nothing_and_prints_the_pause_plan(clusters: dict[str, Any]) -> None:
    c = clusters
    ns = c["ns"]
    kubectl(c["a"], "annotate", c["widgets"], "w1", "-n", ns, f"{BLOCK_MOVE}=provisioning")
    before_a = list_versions(c["a"], ns, c["widgets"])
    status, before_b = raw_request(c["b"], "GET", "/api/v1/namespaces")
    assert status == 200
    code, out, err = run("migrate", "--from-kubeconfig", c["a"], "--to-kubeconfig", c["b"], "--journal",
                         c["journal"], "-n", ns, "--move", "--dry-run")
    assert code == 0, err
    assert f"would pause Cluster {ns}/prod (Cluster.{CAPI} spec.paused=true)" in out
    assert f"would wait for block-move: widgets.{c['group']} {ns}/w1" in out
    assert f"Deployment {ns}/web" in out  # the plan
    assert list_versions(c["a"], ns, c["widgets"]) == before_a
    status, after_b = raw_request(c["b"], "GET", "/api/v1/namespaces")
    assert after_b["metadata"]["resourceVersion"] == before_b["metadata"]["resourceVersion"]
    assert not Path(c["journal"]).exists()
