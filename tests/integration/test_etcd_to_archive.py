"""`kubectl state etcd export --to-archive`: the keys the API test server stored in a real
etcd, converted into an API-level archive that `kubectl state import` restores into a
second API server on another etcd."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kubectl_state.core.etcd.client import EtcdClient
from tests.apiserver.testing import kubectl_json, unique
from tests.conftest import EtcdClusterFactory
from tests.helpers import create, create_widget_crd, owner_ref, read_dir_archive
from tests.helpers import run_cli as run

pytestmark = pytest.mark.timeout(240)


def protobuf_object(api_version: str, kind: str, name: str, namespace: str) -> bytes:
    """What kube-apiserver stores with the protobuf storage media type: the `k8s\\0` magic and a
    runtime.Unknown (typeMeta {apiVersion, kind}, raw) whose raw is the object."""
    def field(number: int, payload: bytes) -> bytes:
        return bytes([number << 3 | 2, len(payload)]) + payload

    meta = field(1, field(1, name.encode()) + field(3, namespace.encode()))
    type_meta = field(1, api_version.encode()) + field(2, kind.encode())
    return b"k8s\x00" + field(1, type_meta) + field(2, meta)


def without_owner_uids(objects: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out = {}
    for path, obj in objects.items():
        copy = json.loads(json.dumps(obj))
        for ref in copy["metadata"].get("ownerReferences", []):
            ref.pop("uid")
        out[path] = copy
    return out


@pytest.fixture
def source(kube_cluster_factory: Any, etcd_cluster_factory: EtcdClusterFactory) -> dict[str, Any]:
    """An API server on an etcd of its own, with a namespace of a bit of everything."""
    cluster = kube_cluster_factory(etcd_endpoints=etcd_cluster_factory(members=1).endpoints)
    kubeconfig = cluster.kubeconfig
    ns, other = unique("etcdarc"), unique("other")
    group = f"{unique('g')}.example.com"
    create(kubeconfig, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
           {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": other}})
    create_widget_crd(kubeconfig, group)
    (deploy,) = create(kubeconfig, {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": ns},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}})
    (widget,) = create(kubeconfig, {"apiVersion": f"{group}/v1", "kind": "Widget",
                                    "metadata": {"name": "w1", "namespace": ns}, "spec": {"size": 3}})
    create(kubeconfig,
           {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "web-config", "namespace": ns, "ownerReferences": [owner_ref(deploy)]},
            "data": {"a": "1"}},
           {"apiVersion": f"{group}/v1", "kind": "Widget",
            "metadata": {"name": "w2", "namespace": ns, "ownerReferences": [owner_ref(widget)]},
            "spec": {"size": 1}},
           {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": ns},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}},
           # Endpoints of a selector-less Service were written by a person: kept.
           {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "external", "namespace": ns},
            "spec": {"ports": [{"port": 5432}]}},
           {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "external", "namespace": ns},
            "subsets": [{"addresses": [{"ip": "192.0.2.10"}], "ports": [{"port": 5432}]}]},
           # Endpoints of a Service with a selector are the endpoints controller's: skipped.
           {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "web", "namespace": ns},
            "subsets": [{"addresses": [{"ip": "192.0.2.11"}], "ports": [{"port": 80}]}]},
           {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "opaque", "namespace": ns},
            "type": "Opaque", "stringData": {"password": "hunter2"}},
           {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "runner", "namespace": ns}},
           {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "cm-reader", "namespace": ns},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]},
           {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "elsewhere", "namespace": other},
            "data": {"b": "2"}})
    return {"cluster": cluster, "kubeconfig": kubeconfig, "ns": ns, "other": other, "group": group,
            "crd": f"widgets.{group}", "proto_key": f"{cluster.prefix}/pods/{ns}/from-protobuf"}


def add_unconvertible(source: dict[str, Any]) -> None:
    """A protobuf Pod and an API server bitmap, straight into etcd (the test server reads JSON only,
    so this comes after anything that lists through it)."""
    prefix = source["cluster"].prefix
    with EtcdClient(source["cluster"].etcd_endpoints) as etcd:
        etcd.put(source["proto_key"].encode(), protobuf_object("v1", "Pod", "from-protobuf", source["ns"]))
        etcd.put(f"{prefix}/leases/{source['other']}/holder".encode(),
                 protobuf_object("coordination.k8s.io/v1", "Lease", "holder", source["other"]))
        etcd.put(f"{prefix}/ranges/serviceips".encode(),
                 b'{"kind":"RangeAllocation","apiVersion":"v1","metadata":{},"range":"10.0.0.0/24","data":""}')


def to_archive(source: dict[str, Any], path: Path, *args: str) -> tuple[dict[str, Any], str]:
    cluster = source["cluster"]
    code, out, err = run("etcd", "export", "--to-archive", str(path), "--endpoints", cluster.etcd_endpoints[0],
                         "--prefix", cluster.prefix, "-o", "json", *args)
    assert code == 0, err
    return json.loads(out), err


def test_a_namespace_from_etcd_imports_into_another_cluster_as_the_api_export_would(
        source: dict[str, Any], kube_cluster_factory: Any, etcd_cluster_factory: EtcdClusterFactory,
        tmp_path: Path) -> None:
    ns, group = source["ns"], source["group"]
    code, _, export_err = run("export", str(tmp_path / "from-api"), "--kubeconfig", source["kubeconfig"],
                              "-n", ns, "-q")
    assert code == 0, export_err
    _, api_objects = read_dir_archive(tmp_path / "from-api")
    add_unconvertible(source)
    summary, err = to_archive(source, tmp_path / "from-etcd", "-n", ns)
    manifest, objects = read_dir_archive(tmp_path / "from-etcd")

    # The same objects, cleaned the same way, as `kubectl state export -n` through the API.
    # The API export also brings cluster-scoped objects the namespace refers to; the etcd
    # conversion keeps the namespace, its namespaced objects and the CRDs of its custom resources.
    assert objects == {p: o for p, o in api_objects.items() if p in objects}
    assert set(objects) == {
        f"resources/namespaces/cluster/{ns}.yaml",
        f"resources/customresourcedefinitions.apiextensions.k8s.io/cluster/widgets.{group}.yaml",
        f"resources/deployments.apps/namespaces/{ns}/web.yaml",
        f"resources/configmaps/namespaces/{ns}/web-config.yaml",
        f"resources/widgets.{group}/namespaces/{ns}/w1.yaml",
        f"resources/widgets.{group}/namespaces/{ns}/w2.yaml",
        f"resources/services/namespaces/{ns}/web.yaml",
        f"resources/services/namespaces/{ns}/external.yaml",
        f"resources/endpoints/namespaces/{ns}/external.yaml",
        f"resources/secrets/namespaces/{ns}/opaque.yaml",
        f"resources/serviceaccounts/namespaces/{ns}/runner.yaml",
        f"resources/roles.rbac.authorization.k8s.io/namespaces/{ns}/cm-reader.yaml",
    }
    assert objects[f"resources/secrets/namespaces/{ns}/opaque.yaml"]["data"] == {"password": "aHVudGVyMg=="}
    assert "clusterIP" not in objects[f"resources/services/namespaces/{ns}/web.yaml"]["spec"]

    # The protobuf value is counted and named, in the manifest and the command's summary.
    assert manifest["skipped"]["not-convertible:protobuf"] == {"pods": 1}
    assert manifest["skipped"]["endpoints-of-service"] == {"endpoints": 1}
    assert summary["notConvertible"] == {"not-convertible:protobuf": {"count": 1, "keys": [source["proto_key"]]}}
    assert summary["objects"] == len(objects)
    assert f"1 keys not converted (not-convertible:protobuf): {source['proto_key']}" in err
    assert manifest["source"]["server"].startswith("etcd:")
    uids = {e["path"]: e.get("uid") for e in manifest["objects"]}
    assert all(uids.values())  # kept for relinking owner references

    # Into a second API server on another etcd: everything created, owners relinked.
    target = kube_cluster_factory(etcd_endpoints=etcd_cluster_factory(members=1).endpoints).kubeconfig
    code, out, err = run("import", str(tmp_path / "from-etcd"), "--kubeconfig", target, "-o", "json")
    assert code == 0, err
    report = json.loads(out)
    assert {o["outcome"] for o in report["objects"]} == {"created"}, report
    assert report["summary"]["created"] == len(objects)
    code, _, err = run("export", str(tmp_path / "back"), "--kubeconfig", target, "-n", ns, "-q")
    assert code == 0, err
    _, back = read_dir_archive(tmp_path / "back")
    assert without_owner_uids({p: o for p, o in back.items() if p in objects}) == without_owner_uids(objects)
    w1 = kubectl_json(target, "get", f"widgets.{group}", "w1", "-n", ns)
    w2 = kubectl_json(target, "get", f"widgets.{group}", "w2", "-n", ns)
    assert w2["metadata"]["ownerReferences"][0]["uid"] == w1["metadata"]["uid"]


def test_whole_prefix_and_resource_filter(source: dict[str, Any], tmp_path: Path) -> None:
    ns, other = source["ns"], source["other"]
    add_unconvertible(source)
    summary, _ = to_archive(source, tmp_path / "all")
    lease_key = f"{source['cluster'].prefix}/leases/{other}/holder"
    assert summary["notConvertible"]["not-convertible:protobuf"] == {
        "count": 2, "keys": [lease_key, source["proto_key"]]}
    assert summary["skipped"]["apiserver-internal"] == 1
    manifest, _ = read_dir_archive(tmp_path / "all")
    # The envelope names the group the key leaves out.
    assert manifest["skipped"]["not-convertible:protobuf"] == {"leases.coordination.k8s.io": 1, "pods": 1}
    summary, _ = to_archive(source, tmp_path / "all.tar.gz")
    assert summary["notConvertible"]["not-convertible:protobuf"]["count"] == 2
    assert summary["keys"] > summary["objects"] > 12

    summary, _ = to_archive(source, tmp_path / "cms", "--include-resources", "configmaps")
    manifest, objects = read_dir_archive(tmp_path / "cms")
    assert f"resources/configmaps/namespaces/{other}/elsewhere.yaml" in objects
    assert f"resources/configmaps/namespaces/{ns}/web-config.yaml" in objects
    assert {o["resource"] for o in manifest["objects"]} == {"configmaps"}
    # Not asked for: the protobuf pod is outside the selection, so it is not reported either.
    assert summary["notConvertible"] == {}
    assert [r["resource"] for r in manifest["resources"]] == ["configmaps"]


def test_refuses_an_existing_archive_and_archive_flags_without_to_archive(source: dict[str, Any],
                                                                           tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("x")
    endpoint = source["cluster"].etcd_endpoints[0]
    code, _, err = run("etcd", "export", "--to-archive", str(tmp_path / "taken"), "--endpoints", endpoint)
    assert code != 0 and "taken" in err
    assert (tmp_path / "taken" / "x").read_text() == "x"
    code, _, err = run("etcd", "export", str(tmp_path / "raw"), "-n", "x", "--endpoints", endpoint)
    assert code != 0 and "--to-archive" in err
    assert not (tmp_path / "raw").exists()
