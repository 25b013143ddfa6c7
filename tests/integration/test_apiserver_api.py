"""API behaviour through the Python `kubernetes` client, against the test API server (or a
real cluster named by $KUBECTL_STATE_TEST_KUBECONFIG). Each test names the behaviour."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import watch
from kubernetes.client import ApiException
from kubernetes.dynamic import DynamicClient

from tests.apiserver.testing import dynamic_client, raw_request, unique, wait_until


@pytest.fixture(scope="module")
def dyn(kube_cluster: str) -> DynamicClient:
    return dynamic_client(kube_cluster)


@pytest.fixture
def ns(dyn: DynamicClient) -> Iterator[str]:
    name = unique("api")
    namespaces = dyn.resources.get(api_version="v1", kind="Namespace")
    namespaces.create(body={"metadata": {"name": name}})
    yield name
    with contextlib.suppress(ApiException):
        namespaces.delete(name=name)


def _cm(dyn: DynamicClient) -> Any:
    return dyn.resources.get(api_version="v1", kind="ConfigMap")


def _raw(
    kube_cluster: str,
    method: str,
    path: str,
    body: Any = None,
    *,
    content_type: str = "application/json",
    query: list[tuple[str, str]] | None = None,
) -> tuple[int, Any]:
    return raw_request(kube_cluster, method, path, body, content_type=content_type, params=query)


APPLY = "application/apply-patch+yaml"


def _status_of(exc: ApiException) -> dict[str, Any]:
    body = json.loads(exc.body)
    assert body["kind"] == "Status" and body["status"] == "Failure"
    return body


# --- discovery ---------------------------------------------------------------------------------


def test_discovery_serves_version_api_apis_and_group_versions(kube_cluster: str) -> None:
    code, version = _raw(kube_cluster, "GET", "/version")
    assert code == 200 and version["major"] == "1"
    code, api = _raw(kube_cluster, "GET", "/api")
    assert api["kind"] == "APIVersions" and "v1" in api["versions"]
    code, core = _raw(kube_cluster, "GET", "/api/v1")
    assert {"configmaps", "namespaces", "pods", "services/status"} <= {r["name"] for r in core["resources"]}
    code, groups = _raw(kube_cluster, "GET", "/apis")
    names = {g["name"] for g in groups["groups"]}
    assert {"apps", "apiextensions.k8s.io", "rbac.authorization.k8s.io"} <= names
    code, apps = _raw(kube_cluster, "GET", "/apis/apps")
    assert code == 200 and apps["preferredVersion"]["groupVersion"] == "apps/v1"
    code, apps_v1 = _raw(kube_cluster, "GET", "/apis/apps/v1")
    assert "deployments/scale" in {r["name"] for r in apps_v1["resources"]}


def _crd(group: str, *, status: bool = False) -> dict[str, Any]:
    version: dict[str, Any] = {
        "name": "v1",
        "served": True,
        "storage": True,
        "schema": {
            "openAPIV3Schema": {
                "type": "object",
                "properties": {
                    "spec": {
                        "type": "object",
                        "required": ["size"],
                        "properties": {
                            "size": {"type": "integer", "minimum": 1},
                            "color": {"type": "string", "enum": ["red", "blue"]},
                        },
                    },
                    "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}},
                },
            }
        },
    }
    if status:
        version["subresources"] = {"status": {}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "versions": [version],
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wdg"]},
        },
    }


@pytest.fixture
def widget_crd(dyn: DynamicClient, kube_cluster: str) -> Iterator[str]:
    group = f"{unique('w')}.example.com"
    crds = dyn.resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition")
    crds.create(body=_crd(group, status=True))
    wait_until(lambda: _raw(kube_cluster, "GET", f"/apis/{group}/v1")[0] == 200)
    yield group
    with contextlib.suppress(ApiException):
        crds.delete(name=f"widgets.{group}")


def _widgets(kube_cluster: str, group: str) -> Any:
    # A fresh client: the module's client cached discovery before the CRD existed.
    return dynamic_client(kube_cluster).resources.get(api_version=f"{group}/v1", kind="Widget")


def test_crd_adds_discovery_sets_conditions_and_deletion_removes_it(dyn: DynamicClient, kube_cluster: str) -> None:
    group = f"{unique('d')}.example.com"
    crds = dyn.resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition")
    crds.create(body=_crd(group))

    def established() -> bool:
        conditions = crds.get(name=f"widgets.{group}").to_dict().get("status", {}).get("conditions") or []
        kinds = {c["type"] for c in conditions if c["status"] == "True"}
        return {"Established", "NamesAccepted"} <= kinds

    wait_until(established)
    assert group in {g["name"] for g in _raw(kube_cluster, "GET", "/apis")[1]["groups"]}
    code, resources = _raw(kube_cluster, "GET", f"/apis/{group}/v1")
    assert code == 200 and resources["resources"][0]["name"] == "widgets"
    assert resources["resources"][0]["shortNames"] == ["wdg"]
    crds.delete(name=f"widgets.{group}")
    wait_until(lambda: _raw(kube_cluster, "GET", f"/apis/{group}/v1")[0] == 404)
    assert group not in {g["name"] for g in _raw(kube_cluster, "GET", "/apis")[1]["groups"]}


def test_aggregated_metrics_api_is_listed_but_lists_empty(kube_cluster: str, local_kube_cluster: Any) -> None:
    code, groups = _raw(kube_cluster, "GET", "/apis")
    assert "metrics.k8s.io" in {g["name"] for g in groups["groups"]}
    code, pods = _raw(kube_cluster, "GET", "/apis/metrics.k8s.io/v1beta1/pods")
    assert code == 200 and pods["items"] == []


def test_openapi_v3_index_and_group_version_documents_declare_field_validation(kube_cluster: str) -> None:
    code, index = _raw(kube_cluster, "GET", "/openapi/v3")
    assert code == 200 and "apis/apps/v1" in index["paths"] and "api/v1" in index["paths"]
    url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
    path, _, query = url.partition("?")
    code, doc = _raw(kube_cluster, "GET", path, query=[tuple(query.split("="))] if query else None)
    patch = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {"group": "apps", "version": "v1", "kind": "Deployment"}
    assert "fieldValidation" in {p["name"] for p in patch["parameters"] if p.get("in") == "query"}


def test_dynamic_client_discovers_and_lists_every_stored_resource(kube_cluster: str) -> None:
    client = dynamic_client(kube_cluster)
    listed = 0
    for resource in client.resources.search():
        if "list" not in (resource.verbs or []) or "/" in resource.name or resource.kind.endswith("List"):
            continue
        result = resource.get()
        assert isinstance(result.items, list)
        listed += 1
    assert listed >= 50


# --- CRUD ---------------------------------------------------------------------------------------


def test_crud_namespaced_resource(dyn: DynamicClient, ns: str) -> None:
    cms = _cm(dyn)
    created = cms.create(namespace=ns, body={"metadata": {"name": "one"}, "data": {"a": "1"}})
    assert created.metadata.namespace == ns
    assert cms.get(namespace=ns, name="one").data.a == "1"
    body = cms.get(namespace=ns, name="one").to_dict()
    body["data"] = {"a": "2"}
    updated = cms.replace(namespace=ns, body=body)
    assert int(updated.metadata.resourceVersion) > int(created.metadata.resourceVersion)
    assert [i.metadata.name for i in cms.get(namespace=ns).items] == ["kube-root-ca.crt", "one"]
    cms.delete(namespace=ns, name="one")
    with pytest.raises(ApiException) as info:
        cms.get(namespace=ns, name="one")
    assert info.value.status == 404 and _status_of(info.value)["reason"] == "NotFound"


def test_crud_cluster_scoped_resource(dyn: DynamicClient) -> None:
    classes = dyn.resources.get(api_version="scheduling.k8s.io/v1", kind="PriorityClass")
    name = unique("pc")
    classes.create(body={"metadata": {"name": name}, "value": 1000})
    assert classes.get(name=name).value == 1000
    classes.patch(name=name, body={"description": "x"}, content_type="application/merge-patch+json")
    assert classes.get(name=name).description == "x"
    assert name in {i.metadata.name for i in classes.get().items}
    classes.delete(name=name)
    with pytest.raises(ApiException):
        classes.get(name=name)


def test_create_with_generate_name(dyn: DynamicClient, ns: str) -> None:
    created = _cm(dyn).create(namespace=ns, body={"metadata": {"generateName": "gen-"}})
    assert created.metadata.name.startswith("gen-") and len(created.metadata.name) == len("gen-") + 5


def test_create_existing_is_409_already_exists(dyn: DynamicClient, ns: str) -> None:
    _cm(dyn).create(namespace=ns, body={"metadata": {"name": "dup"}})
    with pytest.raises(ApiException) as info:
        _cm(dyn).create(namespace=ns, body={"metadata": {"name": "dup"}})
    assert info.value.status == 409 and _status_of(info.value)["reason"] == "AlreadyExists"


def test_create_in_missing_namespace_is_404(dyn: DynamicClient) -> None:
    with pytest.raises(ApiException) as info:
        _cm(dyn).create(namespace=unique("nowhere"), body={"metadata": {"name": "x"}})
    assert info.value.status == 404 and _status_of(info.value)["reason"] == "NotFound"


def test_update_with_stale_resource_version_is_409_conflict(dyn: DynamicClient, ns: str) -> None:
    stale = _cm(dyn).create(namespace=ns, body={"metadata": {"name": "rv"}, "data": {"a": "1"}}).to_dict()
    fresh = dict(stale, data={"a": "2"})
    _cm(dyn).replace(namespace=ns, body=fresh)
    stale["data"] = {"a": "3"}
    with pytest.raises(ApiException) as info:
        _cm(dyn).replace(namespace=ns, body=stale)
    assert info.value.status == 409 and _status_of(info.value)["reason"] == "Conflict"


def test_list_label_and_field_selectors(dyn: DynamicClient, ns: str) -> None:
    for name, tier in (("a", "web"), ("b", "db"), ("c", "web")):
        _cm(dyn).create(namespace=ns, body={"metadata": {"name": name, "labels": {"tier": tier}}})
    names = lambda **kw: [i.metadata.name for i in _cm(dyn).get(namespace=ns, **kw).items]  # noqa: E731
    assert names(label_selector="tier=web") == ["a", "c"]
    assert names(label_selector="tier in (db),!missing") == ["b"]
    assert names(label_selector="tier!=web") == ["b", "kube-root-ca.crt"]
    assert names(field_selector="metadata.name=c") == ["c"]
    assert names(field_selector=f"metadata.namespace={ns},metadata.name!=a", label_selector="tier") == ["b", "c"]
    with pytest.raises(ApiException) as info:
        _cm(dyn).get(namespace=ns, field_selector="spec.nothing=1")
    assert info.value.status == 400 and _status_of(info.value)["reason"] == "BadRequest"


def test_list_pagination_reads_one_consistent_revision(dyn: DynamicClient, ns: str) -> None:
    for i in range(5):
        _cm(dyn).create(namespace=ns, body={"metadata": {"name": f"p{i}"}})
    first = _cm(dyn).get(namespace=ns, limit=2)
    assert [i.metadata.name for i in first.items] == ["kube-root-ca.crt", "p0"]
    assert first.metadata["continue"] and first.metadata.remainingItemCount == 4
    # Written after the first page: not part of this list.
    _cm(dyn).create(namespace=ns, body={"metadata": {"name": "p9-late"}})
    names, token = [i.metadata.name for i in first.items], first.metadata["continue"]
    while token:
        page = _cm(dyn).get(namespace=ns, limit=2, _continue=token)
        assert page.metadata.resourceVersion == first.metadata.resourceVersion
        names += [i.metadata.name for i in page.items]
        token = page.metadata["continue"]
    assert names == ["kube-root-ca.crt", "p0", "p1", "p2", "p3", "p4"]


def test_list_resource_version_is_at_least_every_item(dyn: DynamicClient, ns: str) -> None:
    created = _cm(dyn).create(namespace=ns, body={"metadata": {"name": "x"}})
    listing = _cm(dyn).get(namespace=ns)
    assert int(listing.metadata.resourceVersion) >= int(created.metadata.resourceVersion)


# --- patches ------------------------------------------------------------------------------------


def test_json_merge_patch_and_json_patch(dyn: DynamicClient, ns: str) -> None:
    _cm(dyn).create(namespace=ns, body={"metadata": {"name": "p"}, "data": {"a": "1", "b": "2"}})
    merged = _cm(dyn).patch(
        namespace=ns, name="p", body={"data": {"a": None, "c": "3"}}, content_type="application/merge-patch+json"
    )
    assert merged.to_dict()["data"] == {"b": "2", "c": "3"}
    patched = _cm(dyn).patch(
        namespace=ns,
        name="p",
        content_type="application/json-patch+json",
        body=[
            {"op": "replace", "path": "/data/b", "value": "20"},
            {"op": "add", "path": "/metadata/labels", "value": {"x": "y"}},
        ],
    )
    assert patched.to_dict()["data"] == {"b": "20", "c": "3"} and patched.metadata.labels.x == "y"


def test_strategic_merge_patch_merges_containers_by_name(dyn: DynamicClient, ns: str) -> None:
    deployments = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    deployments.create(
        namespace=ns,
        body={
            "metadata": {"name": "d"},
            "spec": {
                "selector": {"matchLabels": {"a": "b"}},
                "template": {
                    "metadata": {"labels": {"a": "b"}},
                    "spec": {
                        "containers": [{"name": "one", "image": "busybox:1"}, {"name": "two", "image": "busybox:1"}]
                    },
                },
            },
        },
    )
    patched = deployments.patch(
        namespace=ns,
        name="d",
        content_type="application/strategic-merge-patch+json",
        body={"spec": {"template": {"spec": {"containers": [{"name": "two", "image": "busybox:2"}]}}}},
    )
    images = {c.name: c.image for c in patched.spec.template.spec.containers}
    assert images == {"one": "busybox:1", "two": "busybox:2"}
    assert patched.metadata.generation == 2


def test_server_side_apply_needs_field_manager_and_reports_conflicts(
    dyn: DynamicClient, ns: str, kube_cluster: str
) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "ssa", "namespace": ns},
        "data": {"owned": "a"},
    }
    path = f"/api/v1/namespaces/{ns}/configmaps/ssa"
    code, status = _raw(kube_cluster, "PATCH", path, body, content_type=APPLY)
    assert code == 400 and status["reason"] == "BadRequest"
    code, obj = _raw(kube_cluster, "PATCH", path, body, content_type=APPLY, query=[("fieldManager", "alice")])
    assert code == 201 and obj["data"] == {"owned": "a"}
    assert [(m["manager"], m["operation"]) for m in obj["metadata"]["managedFields"]] == [("alice", "Apply")]
    other = dict(body, data={"owned": "b"})
    code, status = _raw(kube_cluster, "PATCH", path, other, content_type=APPLY, query=[("fieldManager", "bob")])
    assert code == 409 and status["reason"] == "Conflict"
    code, obj = _raw(
        kube_cluster, "PATCH", path, other, content_type=APPLY, query=[("fieldManager", "bob"), ("force", "true")]
    )
    assert code == 200 and obj["data"] == {"owned": "b"}
    # alice applies without the field: she no longer owns it, so it stays (bob's).
    code, obj = _raw(
        kube_cluster,
        "PATCH",
        path,
        dict(body, data={"mine": "1"}),
        content_type=APPLY,
        query=[("fieldManager", "alice")],
    )
    assert obj["data"] == {"owned": "b", "mine": "1"}
    code, obj = _raw(
        kube_cluster, "PATCH", path, dict(body, data={}), content_type=APPLY, query=[("fieldManager", "alice")]
    )
    assert obj["data"] == {"owned": "b"}  # what alice alone applied before is removed


# --- deletion -----------------------------------------------------------------------------------


def test_finalizers_set_deletion_timestamp_instead_of_deleting(dyn: DynamicClient, ns: str) -> None:
    _cm(dyn).create(namespace=ns, body={"metadata": {"name": "fin", "finalizers": ["example.com/hold"]}})
    _cm(dyn).delete(namespace=ns, name="fin")
    held = _cm(dyn).get(namespace=ns, name="fin")
    assert held.metadata.deletionTimestamp
    _cm(dyn).patch(
        namespace=ns, name="fin", body={"metadata": {"finalizers": None}}, content_type="application/merge-patch+json"
    )
    wait_until(lambda: "fin" not in {i.metadata.name for i in _cm(dyn).get(namespace=ns).items})


def test_namespace_deletion_terminates_and_removes_contents(dyn: DynamicClient) -> None:
    name = unique("doomed")
    namespaces = dyn.resources.get(api_version="v1", kind="Namespace")
    namespaces.create(body={"metadata": {"name": name}})
    _cm(dyn).create(namespace=name, body={"metadata": {"name": "c"}})
    _cm(dyn).create(namespace=name, body={"metadata": {"name": "held", "finalizers": ["example.com/hold"]}})
    namespaces.delete(name=name)
    ns_obj = namespaces.get(name=name)
    assert ns_obj.status.phase == "Terminating" and ns_obj.metadata.deletionTimestamp
    wait_until(lambda: [i.metadata.name for i in _cm(dyn).get(namespace=name).items] == ["held"])
    with pytest.raises(ApiException) as info:
        _cm(dyn).create(namespace=name, body={"metadata": {"name": "late"}})
    assert info.value.status == 403
    _cm(dyn).patch(
        namespace=name, name="held", body={"metadata": {"finalizers": []}}, content_type="application/merge-patch+json"
    )

    def gone() -> bool:
        try:
            namespaces.get(name=name)
        except ApiException as exc:
            return exc.status == 404
        return False

    wait_until(gone)


# --- dry run, status, watch ---------------------------------------------------------------------


def test_dry_run_all_changes_nothing(dyn: DynamicClient, ns: str) -> None:
    cms = _cm(dyn)
    preview = cms.create(namespace=ns, body={"metadata": {"name": "dry"}}, dry_run="All")
    assert preview.metadata.name == "dry" and preview.metadata.uid
    with pytest.raises(ApiException):
        cms.get(namespace=ns, name="dry")
    real = cms.create(namespace=ns, body={"metadata": {"name": "wet"}, "data": {"a": "1"}})
    cms.patch(
        namespace=ns, name="wet", body={"data": {"a": "2"}}, content_type="application/merge-patch+json", dry_run="All"
    )
    cms.replace(namespace=ns, body=dict(real.to_dict(), data={"a": "3"}), dry_run="All")
    cms.delete(namespace=ns, name="wet", dry_run="All")
    after = cms.get(namespace=ns, name="wet")
    assert after.data.a == "1" and after.metadata.resourceVersion == real.metadata.resourceVersion


def test_status_subresource_separates_spec_and_status(kube_cluster: str, widget_crd: str, ns: str) -> None:
    widgets = _widgets(kube_cluster, widget_crd)
    created = widgets.create(
        namespace=ns,
        body={
            "apiVersion": f"{widget_crd}/v1",
            "kind": "Widget",
            "metadata": {"name": "w"},
            "spec": {"size": 1},
            "status": {"ready": True},
        },
    )
    assert "status" not in created.to_dict() or not created.to_dict()["status"]  # dropped on create
    body = widgets.get(namespace=ns, name="w").to_dict()
    body["status"] = {"ready": True}
    widgets.status.replace(namespace=ns, body=body)
    after = widgets.get(namespace=ns, name="w")
    assert after.status.ready is True and after.metadata.generation == 1  # status writes keep generation
    body = after.to_dict()
    body["status"] = {"ready": False}
    body["spec"] = {"size": 2}
    main = widgets.replace(namespace=ns, body=body)
    assert main.status.ready is True and main.spec.size == 2 and main.metadata.generation == 2


def test_watch_reports_added_modified_deleted(kube_cluster: str, dyn: DynamicClient, ns: str) -> None:
    start = _cm(dyn).get(namespace=ns).metadata.resourceVersion
    seen: list[tuple[str, str]] = []

    def consume() -> None:
        w = watch.Watch()
        for event in _cm(dyn).watch(namespace=ns, resource_version=start, timeout=15, watcher=w):
            seen.append((event["type"], event["object"].metadata.name))
            if event["type"] == "DELETED":
                w.stop()

    thread = threading.Thread(target=consume)
    thread.start()
    _cm(dyn).create(namespace=ns, body={"metadata": {"name": "w"}})
    _cm(dyn).patch(namespace=ns, name="w", body={"data": {"x": "1"}}, content_type="application/merge-patch+json")
    _cm(dyn).delete(namespace=ns, name="w")
    thread.join(timeout=20)
    assert seen == [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]


# --- server-populated fields --------------------------------------------------------------------


def test_server_populated_fields(dyn: DynamicClient, ns: str) -> None:
    deployments = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    created = deployments.create(
        namespace=ns,
        body={
            "metadata": {"name": "d"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"a": "b"}},
                "template": {
                    "metadata": {"labels": {"a": "b"}},
                    "spec": {"containers": [{"name": "c", "image": "x:1"}]},
                },
            },
        },
        field_manager="tester",
    )
    meta = created.metadata
    assert meta.uid and meta.resourceVersion and meta.creationTimestamp and meta.generation == 1
    assert meta.managedFields[0].manager == "tester" and meta.managedFields[0].operation == "Update"
    relabelled = deployments.patch(
        namespace=ns, name="d", body={"metadata": {"labels": {"x": "y"}}}, content_type="application/merge-patch+json"
    )
    assert relabelled.metadata.generation == 1  # metadata changes do not bump generation
    scaled = deployments.patch(
        namespace=ns, name="d", body={"spec": {"replicas": 3}}, content_type="application/merge-patch+json"
    )
    assert scaled.metadata.generation == 2


def test_new_namespace_gets_default_service_account_and_root_ca(dyn: DynamicClient, ns: str) -> None:
    sas = dyn.resources.get(api_version="v1", kind="ServiceAccount")
    wait_until(lambda: "default" in {i.metadata.name for i in sas.get(namespace=ns).items})
    ca = wait_until(
        lambda: next((i for i in _cm(dyn).get(namespace=ns).items if i.metadata.name == "kube-root-ca.crt"), None)
    )
    assert "BEGIN CERTIFICATE" in ca.data["ca.crt"]


def test_cluster_starts_with_default_namespaces_and_kubernetes_service(dyn: DynamicClient) -> None:
    names = {i.metadata.name for i in dyn.resources.get(api_version="v1", kind="Namespace").get().items}
    assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= names
    svc = dyn.resources.get(api_version="v1", kind="Service").get(namespace="default", name="kubernetes")
    assert svc.spec.clusterIP and svc.spec.ports[0].port == 443


def test_service_cluster_ip_is_allocated_from_the_range(dyn: DynamicClient, ns: str, local_kube_cluster: Any) -> None:
    services = dyn.resources.get(api_version="v1", kind="Service")
    ips = set()
    for i in range(3):
        svc = services.create(
            namespace=ns,
            body={"metadata": {"name": f"s{i}"}, "spec": {"ports": [{"port": 80}], "selector": {"a": "b"}}},
        )
        assert ipaddress.ip_address(svc.spec.clusterIP) in ipaddress.ip_network("10.96.0.0/12")
        assert svc.spec.clusterIPs == [svc.spec.clusterIP]
        ips.add(svc.spec.clusterIP)
    assert len(ips) == 3
    headless = services.create(
        namespace=ns, body={"metadata": {"name": "h"}, "spec": {"clusterIP": "None", "ports": [{"port": 80}]}}
    )
    assert headless.spec.clusterIP == "None"
    with pytest.raises(ApiException) as info:
        services.create(
            namespace=ns,
            body={"metadata": {"name": "taken"}, "spec": {"clusterIP": next(iter(ips)), "ports": [{"port": 80}]}},
        )
    assert info.value.status == 422


# --- errors -------------------------------------------------------------------------------------


def test_errors_are_status_objects_with_code_and_reason(kube_cluster: str, ns: str) -> None:
    base = f"/api/v1/namespaces/{ns}/configmaps"
    cases = [
        ("GET", f"{base}/missing", None, 404, "NotFound"),
        ("POST", base, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Bad_Name"}}, 422, "Invalid"),
        ("POST", base, {"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "x"}}, 400, "BadRequest"),
        ("POST", f"{base}/named", {"metadata": {"name": "named"}}, 405, "MethodNotAllowed"),
        ("POST", "/api/v1/componentstatuses", {"metadata": {"name": "x"}}, 405, "MethodNotAllowed"),
    ]
    for method, path, body, code, reason in cases:
        got, status = _raw(kube_cluster, method, path, body)
        assert (got, status["kind"], status["reason"]) == (code, "Status", reason), (method, path, status)
        assert status["code"] == code and status["message"]


def test_custom_resource_is_validated_against_its_schema(kube_cluster: str, widget_crd: str, ns: str) -> None:
    path = f"/apis/{widget_crd}/v1/namespaces/{ns}/widgets"
    bad = {
        "apiVersion": f"{widget_crd}/v1",
        "kind": "Widget",
        "metadata": {"name": "bad"},
        "spec": {"size": 0, "color": "green"},
    }
    code, status = _raw(kube_cluster, "POST", path, bad)
    assert code == 422 and status["reason"] == "Invalid"
    fields = {c["field"] for c in status["details"]["causes"]}
    assert fields == {"spec.size", "spec.color"}
    code, status = _raw(kube_cluster, "POST", path, dict(bad, spec={"color": "red"}))
    assert code == 422 and status["details"]["causes"][0]["reason"] == "FieldValueRequired"
    code, status = _raw(
        kube_cluster, "POST", path, dict(bad, spec={"size": 1, "extra": True}), query=[("fieldValidation", "Strict")]
    )
    assert code == 400 and "extra" in status["message"]
    code, obj = _raw(kube_cluster, "POST", path, dict(bad, spec={"size": 1, "color": "blue"}))
    assert code == 201 and obj["spec"] == {"size": 1, "color": "blue"}
