"""`kubectl state import` and `kubectl state diff`: archives exported from one cluster (the
module's `kube_cluster`, or a real one) restored into a fresh, empty one
(`kube_cluster_factory`), compared by exporting that one back."""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path
from typing import Any

import pytest

from tests.apiserver.testing import kubectl, kubectl_json, raw_request, unique
from tests.helpers import create, create_widget_crd, owner_ref, read_dir_archive
from tests.helpers import run_cli as run
from tests.unit.test_import_report import validate_report


def export(kubeconfig: str, target: Path, *args: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    code, _, err = run("export", str(target), "--kubeconfig", kubeconfig, "-q", *args)
    assert code == 0, err
    return read_dir_archive(target)


def import_json(*argv: str) -> tuple[int, dict[str, Any], str]:
    """`kubectl state import ARGV -o json`; every report it prints must meet the report schema."""
    code, out, err = run("import", *argv, "-o", "json")
    report = json.loads(out) if out.strip() else {}
    if report:
        validate_report(report)
    return code, report, err


def outcomes(report: dict[str, Any]) -> dict[str, str]:
    return {f"{o['kind']}/{o['namespace'] or ''}/{o['name']}": o["outcome"] for o in report["objects"]}


def revision(kubeconfig: str) -> int:
    """The cluster's etcd revision, as the resourceVersion of a list (every write bumps it)."""
    status, body = raw_request(kubeconfig, "GET", "/api/v1/namespaces", params=[("limit", "1")])
    assert status == 200, body
    return int(body["metadata"]["resourceVersion"])


def without_owner_uids(objects: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out = {}
    for path, obj in objects.items():
        copy = json.loads(json.dumps(obj))
        for ref in copy["metadata"].get("ownerReferences", []):
            ref.pop("uid")
        out[path] = copy
    return out


@pytest.fixture(scope="module")
def source(kube_cluster: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A namespace with a bit of everything import has to get right, exported."""
    ns = unique("imp")
    group = f"{unique('g')}.example.com"
    crd_name = f"widgets.{group}"
    create(kube_cluster, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    create_widget_crd(kube_cluster, group)
    (deploy,) = create(kube_cluster, {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": ns},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}})
    # A ConfigMap owned by the Deployment (an earlier tier than its owner), and one owned by it.
    (owned,) = create(kube_cluster, {"apiVersion": "v1", "kind": "ConfigMap",
                                     "metadata": {"name": "web-config", "namespace": ns,
                                                  "ownerReferences": [owner_ref(deploy)]},
                                     "data": {"a": "1"}})
    create(kube_cluster, {"apiVersion": "v1", "kind": "ConfigMap",
                          "metadata": {"name": "web-config-extra", "namespace": ns,
                                       "ownerReferences": [owner_ref(owned, controller=False)]},
                          "data": {"b": "2"}})
    (widget,) = create(kube_cluster, {"apiVersion": f"{group}/v1", "kind": "Widget",
                                      "metadata": {"name": "w1", "namespace": ns}, "spec": {"size": 3}})
    create(kube_cluster,
           {"apiVersion": f"{group}/v1", "kind": "Widget",
            "metadata": {"name": "w2", "namespace": ns, "ownerReferences": [owner_ref(widget)]},
            "spec": {"size": 1}},
           {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": ns},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}},
           {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "headless", "namespace": ns},
            "spec": {"clusterIP": "None", "selector": {"app": "web"}, "ports": [{"port": 80}]}},
           {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "opaque", "namespace": ns},
            "type": "Opaque", "stringData": {"password": "hunter2"}},
           {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "runner", "namespace": ns}},
           {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "cm-reader", "namespace": ns},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]},
           {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "runner-reads", "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "cm-reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "runner", "namespace": ns}]},
           {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": f"reader-{ns}"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]},
           {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "pods", "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": f"reader-{ns}"},
            "subjects": [{"kind": "ServiceAccount", "name": "runner", "namespace": ns}]},
           {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data", "namespace": ns},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
                     "volumeName": f"pv-{ns}", "storageClassName": ""}},
           {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": f"pv-{ns}"},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                     "hostPath": {"path": "/tmp/pv"},
                     "claimRef": {"namespace": ns, "name": "data", "kind": "PersistentVolumeClaim",
                                  "apiVersion": "v1"}}})
    archive = tmp_path_factory.mktemp("import") / "backup"
    manifest, objects = export(kube_cluster, archive, "-n", ns)
    return {"ns": ns, "group": group, "crd": crd_name, "archive": archive, "manifest": manifest,
            "objects": objects}


@pytest.fixture
def target_cluster(kube_cluster_factory: Any) -> Any:
    """A fresh, empty cluster on an etcd of its own."""
    return kube_cluster_factory()


@pytest.fixture
def target(target_cluster: Any) -> str:
    return str(target_cluster.kubeconfig)


def changed_keys(cluster: Any, since: int) -> list[str]:
    """etcd keys written after revision `since` (the test server's etcd, for a precise check)."""
    from kubectl_state.core.etcd.client import EtcdClient

    with EtcdClient(cluster.etcd_endpoints) as etcd:
        return [kv.key.decode() for kv in etcd.iter_prefix(cluster.prefix.encode() + b"/", keys_only=True)
                if kv.mod_revision > since]


def test_round_trip_into_an_empty_cluster_gives_the_same_objects(source: dict[str, Any], target: str,
                                                                  tmp_path: Path) -> None:
    ns = source["ns"]
    code, report, err = import_json(str(source["archive"]), "--kubeconfig", target)
    assert code == 0, err
    assert set(outcomes(report).values()) == {"created"}, report
    assert report["summary"]["created"] == len(source["objects"])
    _, objects = export(target, tmp_path / "back", "-n", ns)
    assert without_owner_uids(objects) == without_owner_uids(source["objects"])

    # Owner references point at the new owners' uids in the target.
    deploy = kubectl_json(target, "get", "deployment", "web", "-n", ns)
    config = kubectl_json(target, "get", "configmap", "web-config", "-n", ns)
    extra = kubectl_json(target, "get", "configmap", "web-config-extra", "-n", ns)
    assert config["metadata"]["ownerReferences"][0]["uid"] == deploy["metadata"]["uid"]
    assert extra["metadata"]["ownerReferences"][0]["uid"] == config["metadata"]["uid"]
    w1 = kubectl_json(target, "get", f"widgets.{source['group']}", "w1", "-n", ns)
    w2 = kubectl_json(target, "get", f"widgets.{source['group']}", "w2", "-n", ns)
    assert w2["metadata"]["ownerReferences"][0]["uid"] == w1["metadata"]["uid"]
    archived_uids = {e.get("uid") for e in source["manifest"]["objects"]}
    assert deploy["metadata"]["uid"] not in archived_uids

    # The service got a cluster IP from the target (the archive carries none).
    service = kubectl_json(target, "get", "service", "web", "-n", ns)
    assert service["spec"]["clusterIP"] not in ("", "None", None)
    assert "clusterIP" not in source["objects"][f"resources/services/namespaces/{ns}/web.yaml"]["spec"]

    # The CRD was written (and Established) before its custom resources.
    order = [f"{o['kind']}/{o['name']}" for o in report["objects"]]
    assert order.index(f"CustomResourceDefinition/{source['crd']}") < order.index("Widget/w1") < \
        order.index("Widget/w2")
    crd = kubectl_json(target, "get", "crd", source["crd"])
    assert {c["type"]: c["status"] for c in crd["status"]["conditions"]}["Established"] == "True"


def test_importing_the_same_archive_twice_changes_nothing_the_second_time(source: dict[str, Any], target: str,
                                                                          target_cluster: Any) -> None:
    code, _, err = import_json(str(source["archive"]), "--kubeconfig", target)
    assert code == 0, err
    before = revision(target)
    code, report, err = import_json(str(source["archive"]), "--kubeconfig", target)
    assert code == 0, err
    assert set(outcomes(report).values()) == {"unchanged"}, report
    # No object was written (a refused create of a Service may allocate and release an IP).
    assert changed_keys(target_cluster, before) == []


def test_server_dry_run_writes_nothing_and_reports_what_would_happen(source: dict[str, Any], target: str,
                                                                    target_cluster: Any) -> None:
    before = revision(target)
    code, report, _err = import_json(str(source["archive"]), "--dry-run=server", "--kubeconfig", target)
    assert code == 0, [o for o in report["objects"] if o["outcome"] == "failed"]
    assert changed_keys(target_cluster, before) == []
    assert report["dryRun"] == "server"
    found = outcomes(report)
    ns = source["ns"]
    assert found[f"Namespace//{ns}"] == "created"
    assert found[f"ConfigMap/{ns}/web-config"] == "created"
    # Custom resources of a CRD this import would create cannot be checked by the server.
    assert found[f"Widget/{ns}/w1"] == "skipped"
    assert "CustomResourceDefinition" in next(o["reason"] for o in report["objects"] if o["name"] == "w1")
    assert kubectl(target, "get", "namespace", ns, check=False).returncode != 0


def test_server_dry_run_of_an_existing_import_reports_unchanged(source: dict[str, Any], target: str) -> None:
    code, _, err = import_json(str(source["archive"]), "--kubeconfig", target)
    assert code == 0, err
    kubectl(target, "patch", "configmap", "web-config", "-n", source["ns"], "--type=merge",
            "-p", '{"data":{"a":"changed"}}')
    before = revision(target)
    code, report, err = import_json(str(source["archive"]), "--dry-run=server", "--existing=update",
                                    "--force-conflicts", "--kubeconfig", target)
    assert code == 0, err
    assert revision(target) == before
    found = outcomes(report)
    assert found[f"ConfigMap/{source['ns']}/web-config"] == "updated"
    assert found[f"Widget/{source['ns']}/w1"] == "unchanged"
    assert kubectl_json(target, "get", "configmap", "web-config", "-n", source["ns"])["data"] == {"a": "changed"}


def test_client_dry_run_prints_the_plan_in_tier_order_and_touches_nothing(source: dict[str, Any],
                                                                          target: str) -> None:
    before = revision(target)
    code, out, err = run("import", str(source["archive"]), "--dry-run=client", "--kubeconfig", target)
    assert code == 0, err
    assert revision(target) == before
    lines = out.splitlines()
    steps = [line.split(": ", 1)[1].split(" (")[0] for line in lines if line.startswith("step ")]
    assert steps[:2] == ["customresourcedefinitions.apiextensions.k8s.io", "namespaces"]
    position = {name: index for index, name in enumerate(steps)}
    assert position["persistentvolumes"] < position["persistentvolumeclaims"] < \
        position["roles.rbac.authorization.k8s.io"] < position["serviceaccounts"] < position["secrets"]

    def line_of(text: str) -> int:
        return next(index for index, line in enumerate(lines) if line.strip().startswith(text))

    ns = source["ns"]
    assert line_of(f"Deployment {ns}/web") < line_of(f"ConfigMap {ns}/web-config ") < \
        line_of(f"ConfigMap {ns}/web-config-extra")
    assert line_of(f"Widget {ns}/w1") < line_of(f"Widget {ns}/w2")
    code, out, err = run("import", str(source["archive"]), "--dry-run=client", "-o", "json", "--kubeconfig", target)
    assert code == 0, err
    assert json.loads(out)["objects"] == len(source["objects"])


def test_diff_is_clean_after_an_import_and_shows_a_change(source: dict[str, Any], target: str) -> None:
    code, out, _ = run("diff", str(source["archive"]), "--kubeconfig", target)
    assert code == 1
    assert "+++ archive/namespaces/" in out
    code, _, err = import_json(str(source["archive"]), "--kubeconfig", target)
    assert code == 0, err
    code, out, err = run("diff", str(source["archive"]), "--kubeconfig", target)
    assert (code, out) == (0, ""), err
    kubectl(target, "patch", "configmap", "web-config", "-n", source["ns"], "--type=merge",
            "-p", '{"data":{"a":"changed"}}')
    code, out, err = run("diff", str(source["archive"]), "--kubeconfig", target)
    assert code == 1, err
    assert f"--- live/configmaps/{source['ns']}/web-config" in out
    assert "-  a: changed" in out and "+  a: '1'" in out
    assert out.count("+++ ") == 1


def test_diff_errors_exit_above_one(source: dict[str, Any], tmp_path: Path, target: str) -> None:
    code, _, err = run("diff", str(tmp_path / "missing"), "--kubeconfig", target)
    assert code == 3, err
    code, _, err = run("diff", str(tmp_path), "--kubeconfig", target)
    assert code > 1, err
    # A server that cannot be reached: 4, never 1 ("differs") nor 0.
    unreachable = tmp_path / "unreachable.kubeconfig"
    unreachable.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:9"}}],
        "users": [{"name": "u", "user": {"token": "x"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
    code, _, err = run("diff", str(source["archive"]), "--kubeconfig", str(unreachable))
    assert code == 4, err


def test_existing_objects_are_skipped_updated_or_failed_as_asked(source: dict[str, Any], target: str) -> None:
    ns = source["ns"]
    code, _, err = import_json(str(source["archive"]), "--kubeconfig", target)
    assert code == 0, err
    kubectl(target, "patch", "configmap", "web-config", "-n", ns, "--type=merge", "-p", '{"data":{"a":"changed"}}')
    key = f"ConfigMap/{ns}/web-config"

    code, report, err = import_json(str(source["archive"]), "--kubeconfig", target)
    assert code == 0, err
    assert outcomes(report)[key] == "skipped"
    assert report["summary"]["skipped"] == 1

    code, report, err = import_json(str(source["archive"]), "--existing=fail", "--kubeconfig", target)
    assert code == 1
    assert outcomes(report)[key] == "failed"
    assert report["summary"]["failed"] == 1
    assert "1 of" in err

    # kubectl patch owns .data.a now: server-side apply refuses to take it without being told.
    code, report, err = import_json(str(source["archive"]), "--existing=update", "--kubeconfig", target)
    assert code == 1
    failed = [o for o in report["objects"] if o["outcome"] == "failed"]
    assert [o["name"] for o in failed] == ["web-config"]
    assert failed[0]["statusReason"] == "Conflict" and "--force-conflicts" in failed[0]["reason"]

    code, report, err = import_json(str(source["archive"]), "--existing=update", "--force-conflicts",
                                    "--kubeconfig", target)
    assert code == 0, [(o["name"], o.get("reason")) for o in report["objects"] if o["outcome"] == "failed"]
    assert outcomes(report)[key] == "updated"
    assert report["summary"]["updated"] == 1
    _, live = raw_request(target, "GET", f"/api/v1/namespaces/{ns}/configmaps/web-config")
    assert live["data"] == {"a": "1"}
    assert "kubectl-state" in {m["manager"] for m in live["metadata"]["managedFields"]}


def test_the_report_goes_to_stdout_and_to_a_file_in_json_or_yaml(source: dict[str, Any], target: str,
                                                                  tmp_path: Path) -> None:
    import yaml

    as_yaml = tmp_path / "report.yaml"
    code, out, err = run("import", str(source["archive"]), "--kubeconfig", target, "--report", str(as_yaml),
                         "-o", "yaml")
    assert code == 0, err
    printed = yaml.safe_load(out)
    validate_report(printed)
    assert yaml.safe_load(as_yaml.read_text()) == printed
    assert printed["summary"]["created"] == printed["summary"]["total"] == len(source["objects"])
    # The journal lives next to the report.
    assert printed["journal"] == f"{as_yaml}.journal" and Path(printed["journal"]).is_file()

    as_json = tmp_path / "report.json"
    code, out, err = run("import", str(source["archive"]), "--kubeconfig", target, "--report", str(as_json))
    assert code == 0, err
    written = json.loads(as_json.read_text())
    validate_report(written)
    assert {o["outcome"] for o in written["objects"]} == {"unchanged"}
    # Without -o the report is a table for people: every object on a line, then the totals.
    header, *rows, totals = out.splitlines()
    assert header.split() == ["OUTCOME", "KIND", "NAMESPACE", "NAME", "REASON"]
    assert len(rows) == len(source["objects"]) and all(row.startswith("unchanged ") for row in rows)
    assert totals.startswith(f"{len(source['objects'])} objects: 0 created, 0 updated, "
                             f"{len(source['objects'])} unchanged")
    # -o table names that same table, as kubectl users type it.
    code, out, err = run("import", str(source["archive"]), "--kubeconfig", target, "-o", "table")
    assert code == 0, err
    assert out.splitlines()[0].split()[0] == "OUTCOME"


def test_corrupted_archive_is_refused_before_any_write(source: dict[str, Any], target: str, tmp_path: Path) -> None:
    before = revision(target)
    # A changed byte in the last object file: the whole archive is checked before any write.
    broken = tmp_path / "broken"
    shutil.copytree(source["archive"], broken)
    last = broken / source["manifest"]["objects"][-1]["path"]
    last.write_text(last.read_text().replace("name:", "name: ", 1))
    code, _, err = run("import", str(broken), "--kubeconfig", target)
    assert code == 3, err
    assert "sha256" in err or "bytes" in err

    # An unknown format version.
    future = tmp_path / "future"
    shutil.copytree(source["archive"], future)
    manifest = json.loads((future / "manifest.json").read_text())
    manifest["formatVersion"] = 99
    (future / "manifest.json").write_text(json.dumps(manifest))
    code, _, err = run("import", str(future), "--kubeconfig", target)
    assert code == 3 and "format version 99" in err

    # A manifest path that leaves the archive.
    escaping = tmp_path / "escaping"
    shutil.copytree(source["archive"], escaping)
    manifest = json.loads((escaping / "manifest.json").read_text())
    manifest["objects"][0]["path"] = "../../etc/passwd"
    (escaping / "manifest.json").write_text(json.dumps(manifest))
    code, _, err = run("import", str(escaping), "--kubeconfig", target)
    assert code == 3, err

    # A truncated .tar.gz.
    tarball = tmp_path / "backup.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        for path in sorted(source["archive"].rglob("*")):
            if path.is_file() and path.name != "manifest.json":
                tar.add(path, arcname=str(path.relative_to(source["archive"])))
        tar.add(source["archive"] / "manifest.json", arcname="manifest.json")
    data = tarball.read_bytes()
    (tmp_path / "cut.tar.gz").write_bytes(data[: len(data) * 2 // 3])
    code, _, err = run("import", str(tmp_path / "cut.tar.gz"), "--kubeconfig", target)
    assert code == 3, err
    code, _, err = run("import", str(tarball), "--kubeconfig", target, "--dry-run=client")
    assert code == 0, err  # the intact tarball is fine: the failures above are the damage

    assert revision(target) == before


def test_namespace_mapping_round_trip_rewrites_references(source: dict[str, Any], target: str,
                                                          tmp_path: Path) -> None:
    ns, new = source["ns"], unique("mapped")
    pv_path = f"resources/persistentvolumes/cluster/pv-{ns}.yaml"
    code, report, err = import_json(str(source["archive"]), "--namespace-mapping", f"{ns}:{new}",
                                    "--kubeconfig", target)
    assert code == 0, err
    assert kubectl(target, "get", "namespace", ns, check=False).returncode != 0
    binding = kubectl_json(target, "get", "rolebinding", "runner-reads", "-n", new)
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "runner", "namespace": new}]
    pv = kubectl_json(target, "get", "pv", f"pv-{ns}")
    assert pv["spec"]["claimRef"]["namespace"] == new
    config = kubectl_json(target, "get", "configmap", "web-config", "-n", new)
    deploy = kubectl_json(target, "get", "deployment", "web", "-n", new)
    assert config["metadata"]["ownerReferences"][0]["uid"] == deploy["metadata"]["uid"]
    assert {o.get("sourceNamespace") for o in report["objects"] if o["namespace"] == new} == {ns}

    # Mapped back, the objects are the archive's again.
    back = tmp_path / "back"
    _, _objects = export(target, back, "-n", new)
    code, report, err = import_json(str(back), "--namespace-mapping", f"{new}:{ns}", "--kubeconfig", target)
    assert code == 0, err
    # The PersistentVolume is cluster-scoped: the first import made it, bound to the new namespace.
    assert outcomes(report)[f"PersistentVolume//pv-{ns}"] == "skipped"
    _, again = export(target, tmp_path / "again", "-n", ns)
    assert again.pop(pv_path)["spec"]["claimRef"]["namespace"] == new
    expected = {k: v for k, v in source["objects"].items() if k != pv_path}
    assert without_owner_uids(again) == without_owner_uids(expected)


def test_a_subset_brings_its_namespace_along(source: dict[str, Any], target: str) -> None:
    code, report, err = import_json(str(source["archive"]), "--include-resources", "configmaps,deployments",
                                    "--exclude-resources", "secrets", "--kubeconfig", target)
    assert code == 1  # the Namespace was not asked for: everything in it fails, loudly
    code, report, err = import_json(str(source["archive"]), "-l", "nothing=matches", "--kubeconfig", target)
    assert code == 0, err
    assert report["summary"]["total"] == 0
    assert report["summary"]["filteredOut"] == len(source["objects"])
    code, report, err = import_json(str(source["archive"]), "--include-resources", "namespaces,cm,deploy",
                                    "--kubeconfig", target)
    assert code == 0, err
    assert {o["kind"] for o in report["objects"]} == {"Namespace", "ConfigMap", "Deployment"}


def test_an_owner_in_neither_archive_nor_cluster_fails_the_dependent_unless_orphaned(
        source: dict[str, Any], target: str, tmp_path: Path) -> None:
    ns = source["ns"]
    code, report, err = import_json(str(source["archive"]), "--exclude-resources", "deployments",
                                    "--kubeconfig", target)
    assert code == 1
    found = {o["name"]: o for o in report["objects"] if o["kind"] == "ConfigMap"}
    assert found["web-config"]["outcome"] == "failed"
    assert "Deployment web" in found["web-config"]["reason"]
    assert found["web-config-extra"]["outcome"] == "failed"  # its owner was not restored
    assert "--orphan-missing-owners" in found["web-config"]["reason"]

    code, report, err = import_json(str(source["archive"]), "--exclude-resources", "deployments",
                                    "--orphan-missing-owners", "--kubeconfig", target)
    assert code == 0, err
    config = kubectl_json(target, "get", "configmap", "web-config", "-n", ns)
    assert "ownerReferences" not in config["metadata"]
    extra = kubectl_json(target, "get", "configmap", "web-config-extra", "-n", ns)
    assert extra["metadata"]["ownerReferences"][0]["uid"] == config["metadata"]["uid"]


def test_an_owner_already_in_the_cluster_is_linked_by_name(source: dict[str, Any], target: str) -> None:
    ns = source["ns"]
    code, _, err = import_json(str(source["archive"]), "--include-resources", "namespaces,deployments",
                               "--kubeconfig", target)
    assert code == 0, err
    code, _report, err = import_json(str(source["archive"]), "--include-resources", "configmaps",
                                    "--kubeconfig", target)
    assert code == 0, err
    deploy = kubectl_json(target, "get", "deployment", "web", "-n", ns)
    config = kubectl_json(target, "get", "configmap", "web-config", "-n", ns)
    assert config["metadata"]["ownerReferences"][0]["uid"] == deploy["metadata"]["uid"]


def test_yaml_stream_on_stdin_is_imported(source: dict[str, Any], target: str, kube_cluster: str) -> None:
    code, stream, err = run("export", "-", "-n", source["ns"], "--kubeconfig", kube_cluster)
    assert code == 0, err
    code, out, err = run("import", "-", "--kubeconfig", target, "-o", "json", stdin=stream)
    assert code == 0, err
    report = json.loads(out)
    assert set(outcomes(report).values()) == {"created"}
    config = kubectl_json(target, "get", "configmap", "web-config", "-n", source["ns"])
    deploy = kubectl_json(target, "get", "deployment", "web", "-n", source["ns"])
    assert config["metadata"]["ownerReferences"][0]["uid"] == deploy["metadata"]["uid"]


@pytest.fixture(scope="module")
def many(kube_cluster: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """~300 objects in one namespace: config maps and secrets, and an owner chain
    (Deployment -> ConfigMap -> ConfigMap -> ...), exported."""
    ns = unique("many")
    create(kube_cluster, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    docs = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm-{i:03d}", "namespace": ns},
             "data": {"index": str(i)}} for i in range(270)]
    docs += [{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"secret-{i:02d}", "namespace": ns},
              "stringData": {"value": f"v{i}"}} for i in range(20)]
    # Through the API in parallel: kubectl creates one object at a time, which is slow here.
    from concurrent.futures import ThreadPoolExecutor

    def post(doc: dict[str, Any]) -> None:
        plural = "configmaps" if doc["kind"] == "ConfigMap" else "secrets"
        status, body = raw_request(kube_cluster, "POST", f"/api/v1/namespaces/{ns}/{plural}", doc)
        assert status == 201, body

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(post, docs))
    (owner,) = create(kube_cluster, {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "app", "namespace": ns},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "app"}},
                 "template": {"metadata": {"labels": {"app": "app"}},
                              "spec": {"containers": [{"name": "app", "image": "nginx"}]}}}})
    for i in range(8):
        (owner,) = create(kube_cluster, {"apiVersion": "v1", "kind": "ConfigMap",
                                         "metadata": {"name": f"chain-{i}", "namespace": ns,
                                                      "ownerReferences": [owner_ref(owner)]}})
    archive = tmp_path_factory.mktemp("many") / "backup"
    _manifest, objects = export(kube_cluster, archive, "-n", ns)
    assert len(objects) == 300
    return {"ns": ns, "archive": archive, "objects": objects}


def test_objects_written_but_not_journaled_count_as_created_on_resume(many: dict[str, Any], target: str,
                                                                       tmp_path: Path) -> None:
    journal = tmp_path / "journal.jsonl"
    code, _, err = import_json(str(many["archive"]), "--kubeconfig", target, "--journal", str(journal))
    assert code == 0, err
    # As if the process died after every write and before any journal line.
    lines = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(b"".join(lines[:2]))
    code, report, err = import_json(str(many["archive"]), "--kubeconfig", target, "--journal", str(journal),
                                    "--resume")
    assert code == 0, err
    assert set(outcomes(report).values()) == {"created"}
    assert all("interrupted run" in o["reason"] for o in report["objects"])
    # Without --resume the same objects are just unchanged: nothing says this import made them.
    code, report, err = import_json(str(many["archive"]), "--kubeconfig", target)
    assert code == 0, err
    assert set(outcomes(report).values()) == {"unchanged"}


def test_resume_refuses_a_journal_of_another_import(source: dict[str, Any], many: dict[str, Any], target: str,
                                                    tmp_path: Path) -> None:
    journal = tmp_path / "journal.jsonl"
    code, _, err = import_json(str(source["archive"]), "--kubeconfig", target, "--journal", str(journal))
    assert code == 0, err
    code, _, err = run("import", str(many["archive"]), "--kubeconfig", target, "--journal", str(journal),
                       "--resume")
    assert code == 2 and "belongs to another import" in err
    code, _, err = run("import", str(many["archive"]), "--kubeconfig", target, "--journal",
                       str(tmp_path / "none.jsonl"), "--resume")
    assert code == 2 and "no journal" in err


def test_encrypted_secrets_need_an_identity_before_anything_is_written(kube_cluster: str, source: dict[str, Any],
                                                                        target: str, tmp_path: Path) -> None:
    pyrage = pytest.importorskip("pyrage")
    identity = pyrage.x25519.Identity.generate()
    archive = tmp_path / "enc.tar.gz"
    code, _, err = run("export", str(archive), "-n", source["ns"], "--secrets=encrypt",
                       "--recipient", str(identity.to_public()), "--kubeconfig", kube_cluster, "-q")
    assert code == 0, err
    before = revision(target)
    code, _, err = run("import", str(archive), "--kubeconfig", target)
    assert code == 3
    assert "--identity" in err and "Nothing was written" in err
    assert revision(target) == before
    key = tmp_path / "key.txt"
    key.write_text(f"# test identity\n{identity}\n")
    code, _, err = run("import", str(archive), "--kubeconfig", target, "--identity", str(key))
    assert code == 0, err
    secret = kubectl_json(target, "get", "secret", "opaque", "-n", source["ns"])
    import base64

    assert base64.b64decode(secret["data"]["password"]) == b"hunter2"
    assert "kubectl-state.io/encrypted" not in (secret["metadata"].get("annotations") or {})
