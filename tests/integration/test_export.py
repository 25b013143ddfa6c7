"""`kubectl state export` against a cluster taken from a kubeconfig (the API test server, or
a real cluster with $KUBECTL_STATE_TEST_KUBECONFIG). Every test works in namespaces of its own."""

from __future__ import annotations

import json
import stat
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.apiserver.testing import kubectl_json, unique
from tests.helpers import create, create_widget_crd, owner_ref, read_dir_archive
from tests.helpers import run_cli as run

pyrage = pytest.importorskip("pyrage")

SECRET_VALUE = "s3cr3t-value-that-must-not-leak"


@pytest.fixture(scope="module")
def varied(kube_cluster: str) -> dict[str, Any]:
    """A namespace holding a bit of everything export has to get right."""
    ns = unique("export")
    group = f"{unique('g')}.example.com"
    crd_name = f"widgets.{group}"
    create(kube_cluster, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    create_widget_crd(kube_cluster, group)
    (deploy,) = create(kube_cluster, {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": ns},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}})
    (rs,) = create(kube_cluster, {
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "web-5d4f", "namespace": ns, "labels": {"app": "web"},
                     "ownerReferences": [owner_ref(deploy)]},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}})
    create(kube_cluster, {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-5d4f-abcde", "namespace": ns, "labels": {"app": "web"},
                     "ownerReferences": [owner_ref(rs)]},
        "spec": {"containers": [{"name": "web", "image": "nginx"}], "nodeName": "node-1"}})
    create(kube_cluster, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "standalone", "namespace": ns},
                          "spec": {"containers": [{"name": "c", "image": "busybox"}], "nodeName": "node-2"}})
    (cm,) = create(kube_cluster, {"apiVersion": "v1", "kind": "ConfigMap",
                                  "metadata": {"name": "settings", "namespace": ns, "labels": {"tier": "web"}},
                                  "data": {"a": "1"}})
    create(kube_cluster, {"apiVersion": "v1", "kind": "ConfigMap",
                          "metadata": {"generateName": "generated-", "namespace": ns}, "data": {"b": "2"}})
    create(kube_cluster, {"apiVersion": "v1", "kind": "ConfigMap",
                          "metadata": {"name": "owned-by-cm", "namespace": ns,
                                       "ownerReferences": [owner_ref(cm, controller=False)]}})
    create(kube_cluster,
           {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": ns},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}},
           {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "headless", "namespace": ns},
            "spec": {"clusterIP": "None", "selector": {"app": "web"}, "ports": [{"port": 80}]}},
           {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "opaque", "namespace": ns},
            "type": "Opaque", "stringData": {"password": SECRET_VALUE}},
           {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "registry", "namespace": ns},
            "type": "kubernetes.io/dockerconfigjson",
            "stringData": {".dockerconfigjson": json.dumps({"auths": {"r.example": {"auth": SECRET_VALUE}}})}},
           {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "sa-token", "namespace": ns,
                         "annotations": {"kubernetes.io/service-account.name": "default"}},
            "type": "kubernetes.io/service-account-token"},
           {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data", "namespace": ns},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
                     "volumeName": f"pv-{ns}", "storageClassName": ""}},
           {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": f"pv-{ns}"},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                     "hostPath": {"path": "/tmp/pv"},
                     "claimRef": {"namespace": ns, "name": "data", "kind": "PersistentVolumeClaim",
                                  "apiVersion": "v1"}}},
           {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": f"reader-{ns}"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]},
           {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "read", "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": f"reader-{ns}"},
            "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": ns}]},
           {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "w1", "namespace": ns},
            "spec": {"size": 3}})
    return {"ns": ns, "group": group, "crd": crd_name, "deploy_uid": deploy["metadata"]["uid"],
            "cm_uid": cm["metadata"]["uid"]}


def test_export_of_a_namespace_holds_exactly_the_expected_objects(kubeconfig_export: Any) -> None:
    _manifest, objects, varied = kubeconfig_export
    ns = varied["ns"]
    expected = {
        f"resources/namespaces/cluster/{ns}.yaml",
        f"resources/deployments.apps/namespaces/{ns}/web.yaml",
        f"resources/pods/namespaces/{ns}/standalone.yaml",
        f"resources/configmaps/namespaces/{ns}/settings.yaml",
        f"resources/configmaps/namespaces/{ns}/owned-by-cm.yaml",
        f"resources/services/namespaces/{ns}/web.yaml",
        f"resources/services/namespaces/{ns}/headless.yaml",
        f"resources/secrets/namespaces/{ns}/opaque.yaml",
        f"resources/secrets/namespaces/{ns}/registry.yaml",
        f"resources/persistentvolumeclaims/namespaces/{ns}/data.yaml",
        f"resources/persistentvolumes/cluster/pv-{ns}.yaml",
        f"resources/rolebindings.rbac.authorization.k8s.io/namespaces/{ns}/read.yaml",
        f"resources/clusterroles.rbac.authorization.k8s.io/cluster/reader-{ns}.yaml",
        f"resources/widgets.{varied['group']}/namespaces/{ns}/w1.yaml",
        f"resources/customresourcedefinitions.apiextensions.k8s.io/cluster/{varied['crd']}.yaml",
    }
    generated = [p for p in objects if p.startswith(f"resources/configmaps/namespaces/{ns}/generated-")]
    assert len(generated) == 1
    assert set(objects) - set(generated) == expected


def test_derived_objects_are_skipped_and_counted_per_reason(kubeconfig_export: Any) -> None:
    manifest, objects, varied = kubeconfig_export
    ns = varied["ns"]
    assert not any("replicasets" in p or "web-5d4f" in p or "sa-token" in p for p in objects)
    skipped = manifest["skipped"]
    assert skipped["owned-by-controller"] == {"pods": 1, "replicasets.apps": 1}
    assert skipped["service-account-token"] == {"secrets": 1}
    assert skipped["kube-root-ca"] == {"configmaps": 1}
    assert skipped["default-service-account"] == {"serviceaccounts": 1}
    assert not any(p.endswith(f"/{ns}/default.yaml") for p in objects)


def test_exported_objects_are_cleaned_and_keep_owner_references(kubeconfig_export: Any) -> None:
    manifest, objects, varied = kubeconfig_export
    ns = varied["ns"]
    for path, obj in objects.items():
        meta = obj["metadata"]
        for field in ("uid", "resourceVersion", "creationTimestamp", "managedFields", "generation", "selfLink"):
            assert field not in meta, f"{path} kept metadata.{field}"
        assert "status" not in obj, path
    web = objects[f"resources/services/namespaces/{ns}/web.yaml"]
    assert "clusterIP" not in web["spec"] and "clusterIPs" not in web["spec"]
    assert objects[f"resources/services/namespaces/{ns}/headless.yaml"]["spec"]["clusterIP"] == "None"
    assert "nodeName" not in objects[f"resources/pods/namespaces/{ns}/standalone.yaml"]["spec"]
    owned = objects[f"resources/configmaps/namespaces/{ns}/owned-by-cm.yaml"]
    assert owned["metadata"]["ownerReferences"][0]["uid"] == varied["cm_uid"]
    uids = {e["path"]: e.get("uid") for e in manifest["objects"]}
    assert uids[f"resources/configmaps/namespaces/{ns}/settings.yaml"] == varied["cm_uid"]
    assert uids[f"resources/deployments.apps/namespaces/{ns}/web.yaml"] == varied["deploy_uid"]


def test_manifest_records_the_source_filters_and_list_versions(kubeconfig_export: Any, kube_cluster: str) -> None:
    manifest, _, varied = kubeconfig_export
    server = kubectl_json(kube_cluster, "version")["serverVersion"]["gitVersion"]
    assert manifest["source"]["kubernetesVersion"] == server
    assert manifest["filters"]["namespaces"] == [varied["ns"]]
    listed = {(r["group"], r["resource"]): r for r in manifest["resources"]}
    assert listed[("", "configmaps")]["listResourceVersion"]
    assert listed[("", "configmaps")]["count"] == 3


def test_archive_files_are_private(kubeconfig_export_path: Path) -> None:
    for path in [kubeconfig_export_path, *kubeconfig_export_path.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), f"{path} has mode {oct(mode)}"


@pytest.fixture(scope="module")
def kubeconfig_export_path(kube_cluster: str, varied: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("export") / "backup"
    code, _, err = run("export", str(path), "-n", varied["ns"], "--kubeconfig", kube_cluster)
    assert code == 0, err
    return path


@pytest.fixture(scope="module")
def kubeconfig_export(kubeconfig_export_path: Path, varied: dict[str, Any]) -> Any:
    manifest, objects = read_dir_archive(kubeconfig_export_path)
    return manifest, objects, varied


def test_tar_gz_export_has_the_same_objects_as_a_directory(kube_cluster: str, varied: dict[str, Any],
                                                           kubeconfig_export: Any, tmp_path: Path) -> None:
    _, objects, _ = kubeconfig_export
    target = tmp_path / "backup.tar.gz"
    code, _, err = run("export", str(target), "-n", varied["ns"], "--kubeconfig", kube_cluster, "-q")
    assert code == 0, err
    assert err == ""
    with tarfile.open(target) as tar:
        names = {m.name for m in tar.getmembers() if m.isfile()}
    assert {n for n in names if n != "manifest.json"} == set(objects)


def test_label_selector_and_resource_filters(kube_cluster: str, varied: dict[str, Any], tmp_path: Path) -> None:
    code, out, err = run("export", "-", "-n", varied["ns"], "-l", "tier=web", "--kubeconfig", kube_cluster)
    assert code == 0, err
    names = [(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(out) if d]
    assert ("ConfigMap", "settings") in names
    assert all(name != "web" for _, name in names)
    code, out, err = run("export", "-", "-n", varied["ns"], "--include-resources", "cm,deploy",
                         "--include-cluster-resources=false", "--kubeconfig", kube_cluster)
    assert code == 0, err
    assert {d["kind"] for d in yaml.safe_load_all(out) if d} == {"ConfigMap", "Deployment"}
    code, out, err = run("export", "-", "-n", varied["ns"], "--exclude-resources", "secrets",
                         "--kubeconfig", kube_cluster)
    assert code == 0, err
    assert "Secret" not in {d["kind"] for d in yaml.safe_load_all(out) if d}


def test_include_resources_brings_back_a_kind_skipped_by_default(kube_cluster: str, varied: dict[str, Any]) -> None:
    code, out, err = run("export", "-", "-n", varied["ns"], "--include-resources", "serviceaccounts",
                         "--kubeconfig", kube_cluster)
    assert code == 0, err
    # The default ServiceAccount is derived (skipped); asking for the kind does not change that.
    assert [d for d in yaml.safe_load_all(out) if d and d["kind"] == "ServiceAccount"] == []


def test_secrets_skip_leaves_none(kube_cluster: str, varied: dict[str, Any], tmp_path: Path) -> None:
    target = tmp_path / "nosecrets"
    code, _, err = run("export", str(target), "-n", varied["ns"], "--secrets=skip", "--kubeconfig", kube_cluster)
    assert code == 0, err
    manifest, objects = read_dir_archive(target)
    assert not any(p.startswith("resources/secrets/") for p in objects)
    assert manifest["skipped"]["secrets-skipped"] == {"secrets": 3}
    assert SECRET_VALUE not in "".join(p.read_text() for p in target.rglob("*.yaml"))


def test_secrets_encrypt_leaves_no_plaintext_anywhere(kube_cluster: str, varied: dict[str, Any],
                                                      tmp_path: Path) -> None:
    identity = pyrage.x25519.Identity.generate()
    target = tmp_path / "enc.tar.gz"
    code, _, err = run("export", str(target), "-n", varied["ns"], "--secrets=encrypt",
                       "--recipient", str(identity.to_public()), "--kubeconfig", kube_cluster)
    assert code == 0, err
    raw = b""
    with tarfile.open(target) as tar:
        for member in tar.getmembers():
            if member.isfile():
                handle = tar.extractfile(member)
                assert handle is not None
                raw += handle.read()
    import base64

    assert SECRET_VALUE.encode() not in raw
    assert base64.b64encode(SECRET_VALUE.encode()) not in raw
    assert b"resources/secrets/namespaces" in raw  # the secrets are there, encrypted


def test_unknown_resource_name_is_a_usage_error(kube_cluster: str, varied: dict[str, Any], tmp_path: Path) -> None:
    code, _, err = run("export", str(tmp_path / "x"), "-n", varied["ns"], "--include-resources", "nosuchthings",
                       "--kubeconfig", kube_cluster)
    assert code == 2
    assert 'does not have a resource type "nosuchthings"' in err
    assert not (tmp_path / "x").exists()


def test_unreachable_server_fails_clearly_and_writes_nothing(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:9"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
    target = tmp_path / "backup.tar.gz"
    code, _, err = run("export", str(target), "--kubeconfig", str(kubeconfig))
    assert code == 4
    assert err.startswith("error: cannot reach https://127.0.0.1:9")
    assert list(tmp_path.iterdir()) == [kubeconfig]


def test_a_path_that_cannot_be_written_fails_and_leaves_nothing(kube_cluster: str, varied: dict[str, Any],
                                                                tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code, _, err = run("export", str(blocker / "backup.tar.gz"), "-n", varied["ns"], "--kubeconfig", kube_cluster)
    assert code != 0
    assert err.startswith("error: ")
    assert blocker.read_text() == "not a directory"


def test_verify_passes_on_a_fresh_export_and_names_each_tampering(kube_cluster: str, varied: dict[str, Any],
                                                                   kubeconfig_export_path: Path,
                                                                   tmp_path: Path) -> None:
    import shutil

    code, out, err = run("verify", str(kubeconfig_export_path))
    assert code == 0, err
    assert out.startswith(f"{kubeconfig_export_path}: OK")
    ns = varied["ns"]
    cases = {
        "flipped-byte": lambda root: _flip_byte(root / f"resources/configmaps/namespaces/{ns}/settings.yaml"),
        "deleted": lambda root: (root / f"resources/services/namespaces/{ns}/web.yaml").unlink(),
        "stray": lambda root: (root / f"resources/configmaps/namespaces/{ns}/stray.yaml").write_text("a: 1\n"),
        "traversal": lambda root: _rewrite_manifest_path(root, f"resources/configmaps/namespaces/{ns}/settings.yaml",
                                                        "../outside.yaml"),
    }
    expected_kind = {"flipped-byte": "checksum-mismatch", "deleted": "missing-file", "stray": "stray-file",
                     "traversal": "path-outside-archive"}
    for name, tamper in cases.items():
        copy = tmp_path / name
        shutil.copytree(kubeconfig_export_path, copy)
        tamper(copy)
        code, out, err = run("verify", str(copy), "-o", "json")
        assert code == 3, (name, out, err)
        report = json.loads(out)
        assert not report["ok"]
        kinds = {p["kind"] for p in report["problems"]}
        assert expected_kind[name] in kinds, (name, report["problems"])


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _rewrite_manifest_path(root: Path, old: str, new: str) -> None:
    manifest = root / "manifest.json"
    manifest.write_text(manifest.read_text().replace(f'"{old}"', f'"{new}"'))


def test_inspect_counts_by_resource_and_namespace(kubeconfig_export_path: Path, varied: dict[str, Any]) -> None:
    code, out, err = run("inspect", str(kubeconfig_export_path), "-o", "json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["byNamespace"][varied["ns"]] == 12  # plus 4 cluster-scoped: ns, PV, ClusterRole, CRD
    assert summary["byResource"]["configmaps"] == 3
    code, text, _ = run("inspect", str(kubeconfig_export_path))
    assert code == 0 and "Objects:" in text and varied["ns"] in text
