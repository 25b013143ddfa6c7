"""Skip rules: which resources an export never lists, and which objects it leaves to the cluster."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kubectl_state.core.transform.skip import (
    DEFAULT_SKIPPED_RESOURCES,
    SkippedResource,
    SkipReason,
    resource_skip_reason,
    services_with_selector,
    skip_reason,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "kubernetes-discovery"


def discovery_entries() -> list[tuple[str, str, str, list[str]]]:
    """(group, version, resource, verbs) for every entry of the captured K3s discovery."""
    entries = []
    for path in sorted(FIXTURES.glob("ap*__*.json")):
        document = json.loads(path.read_text())
        group, _, version = document["groupVersion"].rpartition("/")
        for resource in document["resources"]:
            entries.append((group, version, resource["name"], resource["verbs"]))
    return entries


# -- resources -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("group", "resource", "verbs", "reason"),
    [
        ("", "pods/log", ["get"], "subresource"),
        ("apps", "deployments/scale", ["get", "patch", "update"], "subresource"),
        ("", "events", ["create", "list", "watch"], "derived:events"),
        ("events.k8s.io", "events", ["create", "list", "watch"], "derived:events"),
        ("coordination.k8s.io", "leases", ["list"], "derived:leases"),
        ("apps", "controllerrevisions", ["list"], "derived:controllerrevisions"),
        ("", "nodes", ["get", "list"], "cluster:nodes"),
        ("storage.k8s.io", "volumeattachments", ["list"], "cluster:volumeattachments"),
        ("storage.k8s.io", "csinodes", ["list"], "cluster:csinodes"),
        ("", "componentstatuses", ["get", "list"], "not-stored:componentstatuses"),
        ("", "bindings", ["create"], "not-stored:bindings"),
        ("authentication.k8s.io", "tokenreviews", ["create"], "not-stored:reviews"),
        ("authentication.k8s.io", "selfsubjectreviews", ["create"], "not-stored:reviews"),
        ("authorization.k8s.io", "subjectaccessreviews", ["create"], "not-stored:reviews"),
        ("authorization.k8s.io", "localsubjectaccessreviews", ["create"], "not-stored:reviews"),
        ("metrics.k8s.io", "pods", ["get", "list"], "aggregated:metrics"),
        ("custom.metrics.k8s.io", "anything", ["get", "list"], "aggregated:metrics"),
        ("example.com", "widgets", ["get", "create"], "not-listable"),
        ("apps", "deployments", ["get", "list"], None),
        ("example.com", "codereviews", ["get", "list"], None),  # "*reviews" is only for the API's own
        ("", "configmaps", ["list"], None),
    ],
)
def test_resource_rules(group: str, resource: str, verbs: list[str], reason: str | None) -> None:
    assert resource_skip_reason(group, "v1", resource, verbs) == reason


def test_a_real_clusters_discovery_exports_exactly_the_stored_listable_resources() -> None:
    exported = {
        f"{resource}.{group}" if group else resource
        for group, version, resource, verbs in discovery_entries()
        if resource_skip_reason(group, version, resource, verbs) is None
    }
    assert exported == {
        "configmaps",
        "endpoints",
        "limitranges",
        "namespaces",
        "persistentvolumeclaims",
        "persistentvolumes",
        "pods",
        "podtemplates",
        "replicationcontrollers",
        "resourcequotas",
        "secrets",
        "serviceaccounts",
        "services",
        "mutatingwebhookconfigurations.admissionregistration.k8s.io",
        "validatingadmissionpolicies.admissionregistration.k8s.io",
        "validatingadmissionpolicybindings.admissionregistration.k8s.io",
        "validatingwebhookconfigurations.admissionregistration.k8s.io",
        "customresourcedefinitions.apiextensions.k8s.io",
        "apiservices.apiregistration.k8s.io",
        "daemonsets.apps",
        "deployments.apps",
        "replicasets.apps",
        "statefulsets.apps",
        "horizontalpodautoscalers.autoscaling",
        "cronjobs.batch",
        "jobs.batch",
        "certificatesigningrequests.certificates.k8s.io",
        "endpointslices.discovery.k8s.io",
        "flowschemas.flowcontrol.apiserver.k8s.io",
        "prioritylevelconfigurations.flowcontrol.apiserver.k8s.io",
        "gatewayclasses.gateway.networking.k8s.io",
        "gateways.gateway.networking.k8s.io",
        "grpcroutes.gateway.networking.k8s.io",
        "httproutes.gateway.networking.k8s.io",
        "referencegrants.gateway.networking.k8s.io",
        "ingressclasses.networking.k8s.io",
        "ingresses.networking.k8s.io",
        "networkpolicies.networking.k8s.io",
        "servicecidrs.networking.k8s.io",
        "runtimeclasses.node.k8s.io",
        "poddisruptionbudgets.policy",
        "clusterrolebindings.rbac.authorization.k8s.io",
        "clusterroles.rbac.authorization.k8s.io",
        "rolebindings.rbac.authorization.k8s.io",
        "roles.rbac.authorization.k8s.io",
        "priorityclasses.scheduling.k8s.io",
        "csidrivers.storage.k8s.io",
        "csistoragecapacities.storage.k8s.io",
        "storageclasses.storage.k8s.io",
    }


@pytest.mark.parametrize(
    ("include", "group", "resource"),
    [
        ({"nodes"}, "", "nodes"),
        ({"events"}, "", "events"),
        ({"events"}, "events.k8s.io", "events"),
        ({"events.events.k8s.io"}, "events.k8s.io", "events"),
        ({"leases.coordination.k8s.io"}, "coordination.k8s.io", "leases"),
    ],
)
def test_included_resources_come_back(include: set[str], group: str, resource: str) -> None:
    assert resource_skip_reason(group, "v1", resource, ["list"], include=include) is None


def test_including_by_the_wrong_group_does_not_bring_a_resource_back() -> None:
    assert resource_skip_reason("", "v1", "events", ["list"], include={"events.events.k8s.io"}) == "derived:events"


@pytest.mark.parametrize(
    ("group", "resource", "verbs", "reason"),
    [
        ("", "pods/log", ["get"], "subresource"),
        ("authentication.k8s.io", "tokenreviews", ["create"], "not-listable"),
        ("", "bindings", ["create"], "not-listable"),
    ],
)
def test_including_cannot_bring_back_what_cannot_be_listed(
    group: str, resource: str, verbs: list[str], reason: str
) -> None:
    include = {resource, f"{resource}.{group}"}
    assert resource_skip_reason(group, "v1", resource, verbs, include=include) == reason


def test_the_rule_table_can_be_replaced() -> None:
    rules = (*DEFAULT_SKIPPED_RESOURCES, SkippedResource("example.com", "caches", "derived:caches", "rebuilt"))
    assert resource_skip_reason("example.com", "v1", "caches", ["list"], rules=rules) == "derived:caches"
    assert resource_skip_reason("", "v1", "nodes", ["list"], rules=()) is None


def test_every_default_rule_explains_itself_with_a_stable_reason() -> None:
    for rule in DEFAULT_SKIPPED_RESOURCES:
        assert rule.why
        kind, _, subject = rule.reason.partition(":")
        assert kind in {"derived", "cluster", "not-stored", "aggregated"}
        assert subject


# -- objects -------------------------------------------------------------------------------


def meta(name: str, namespace: str | None = "shop", **extra: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, **extra}
    if namespace is not None:
        metadata["namespace"] = namespace
    return metadata


def owner(kind: str, name: str, api_version: str = "apps/v1", *, controller: bool = True) -> dict[str, Any]:
    ref: dict[str, Any] = {"apiVersion": api_version, "kind": kind, "name": name, "uid": f"{name}-uid"}
    if controller:
        ref.update(controller=True, blockOwnerDeletion=True)
    return ref


DEPLOYMENT_POD = {
    "metadata": meta("web-6d4cf56db6-x2x9k", ownerReferences=[owner("ReplicaSet", "web-6d4cf56db6")]),
    "spec": {"containers": [{"name": "web", "image": "nginx"}]},
}
MIRROR_POD = {
    "metadata": meta(
        "kube-apiserver-node-1",
        "kube-system",
        annotations={"kubernetes.io/config.mirror": "3f1c"},
        ownerReferences=[owner("Node", "node-1", "v1")],
    )
}
SA_TOKEN_SECRET = {
    "apiVersion": "v1",
    "kind": "Secret",
    "type": "kubernetes.io/service-account-token",
    "metadata": meta("builder-token-x7k2q", annotations={"kubernetes.io/service-account.name": "builder"}),
    "data": {"token": "ZXlK", "ca.crt": "LS0t", "namespace": "c2hvcA=="},
}
SERVICE_SLICE_LABELS = {
    "kubernetes.io/service-name": "web",
    "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
}
MIRRORED_SLICE_LABELS = {
    "kubernetes.io/service-name": "external-db",
    "endpointslice.kubernetes.io/managed-by": "endpointslicemirroring-controller.k8s.io",
}
SELECTOR_SERVICES = frozenset({("shop", "web")})

OBJECT_CASES: list[tuple[str, str, str, dict[str, Any], str | None]] = [
    # (id, resource, group, object, reason)
    ("pod-of-a-replicaset", "pods", "", DEPLOYMENT_POD, "owned-by-controller"),
    ("mirror-pod-of-a-node", "pods", "", MIRROR_POD, "owned-by-controller"),
    (
        "pod-of-a-job",
        "pods",
        "",
        {"metadata": meta("m-x", ownerReferences=[owner("Job", "m", "batch/v1")])},
        "owned-by-controller",
    ),
    ("standalone-pod", "pods", "", {"metadata": meta("debug")}, None),
    (
        "pod-with-non-controller-owner",
        "pods",
        "",
        {"metadata": meta("p", ownerReferences=[owner("ConfigMap", "c", "v1", controller=False)])},
        None,
    ),
    (
        "replicaset-of-a-deployment",
        "replicasets",
        "apps",
        {"metadata": meta("web-6d4cf56db6", ownerReferences=[owner("Deployment", "web")])},
        "owned-by-controller",
    ),
    (
        "replicaset-of-a-rollout",
        "replicasets",
        "apps",
        {"metadata": meta("r-1", ownerReferences=[owner("Rollout", "r", "argoproj.io/v1alpha1")])},
        None,
    ),
    ("bare-replicaset", "replicasets", "apps", {"metadata": meta("rs")}, None),
    (
        "job-of-a-cronjob",
        "jobs",
        "batch",
        {"metadata": meta("nightly-2901", ownerReferences=[owner("CronJob", "nightly", "batch/v1")])},
        "owned-by-controller",
    ),
    ("bare-job", "jobs", "batch", {"metadata": meta("migrate")}, None),
    ("deployment", "deployments", "apps", {"metadata": meta("web")}, None),
    ("event", "events", "", {"metadata": meta("web.17f2")}, "derived:events"),
    ("events-k8s-io-event", "events", "events.k8s.io", {"metadata": meta("web.17f2")}, "derived:events"),
    ("lease", "leases", "coordination.k8s.io", {"metadata": meta("node-1", "kube-node-lease")}, "derived:leases"),
    ("controllerrevision", "controllerrevisions", "apps", {"metadata": meta("db-7c9")}, "derived:controllerrevisions"),
    ("service-account-token-secret", "secrets", "", SA_TOKEN_SECRET, "service-account-token"),
    ("opaque-secret", "secrets", "", {"type": "Opaque", "metadata": meta("db-password")}, None),
    ("kube-root-ca", "configmaps", "", {"metadata": meta("kube-root-ca.crt"), "data": {"ca.crt": "x"}}, "kube-root-ca"),
    ("ordinary-configmap", "configmaps", "", {"metadata": meta("settings")}, None),
    ("untouched-default-sa", "serviceaccounts", "", {"metadata": meta("default")}, "default-service-account"),
    (
        "pre-1.24-default-sa",
        "serviceaccounts",
        "",
        {"metadata": meta("default"), "secrets": [{"name": "default-token-x7k2q"}]},
        "default-service-account",
    ),
    (
        "applied-but-unchanged-default-sa",
        "serviceaccounts",
        "",
        {"metadata": meta("default", annotations={"kubectl.kubernetes.io/last-applied-configuration": "{}"})},
        "default-service-account",
    ),
    (
        "default-sa-with-pull-secret",
        "serviceaccounts",
        "",
        {"metadata": meta("default"), "imagePullSecrets": [{"name": "registry"}]},
        None,
    ),
    (
        "default-sa-without-automount",
        "serviceaccounts",
        "",
        {"metadata": meta("default"), "automountServiceAccountToken": False},
        None,
    ),
    ("default-sa-with-labels", "serviceaccounts", "", {"metadata": meta("default", labels={"team": "a"})}, None),
    (
        "default-sa-with-annotation",
        "serviceaccounts",
        "",
        {"metadata": meta("default", annotations={"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/x"})},
        None,
    ),
    (
        "default-sa-with-extra-secret",
        "serviceaccounts",
        "",
        {"metadata": meta("default"), "secrets": [{"name": "default-token-x7k2q"}, {"name": "deploy-key"}]},
        None,
    ),
    ("other-sa", "serviceaccounts", "", {"metadata": meta("builder")}, None),
    ("endpoints-of-selector-service", "endpoints", "", {"metadata": meta("web")}, "endpoints-of-service"),
    ("hand-written-endpoints", "endpoints", "", {"metadata": meta("external-db")}, None),
    (
        "apiserver-kubernetes-endpoints",
        "endpoints",
        "",
        {"metadata": meta("kubernetes", "default")},
        "apiserver-managed",
    ),
    ("apiserver-kubernetes-service", "services", "", {"metadata": meta("kubernetes", "default")}, "apiserver-managed"),
    ("ordinary-service", "services", "", {"metadata": meta("web")}, None),
    (
        "controller-endpointslice",
        "endpointslices",
        "discovery.k8s.io",
        {"metadata": meta("web-abc12", labels=SERVICE_SLICE_LABELS)},
        "endpoints-of-service",
    ),
    (
        "mirrored-endpointslice",
        "endpointslices",
        "discovery.k8s.io",
        {"metadata": meta("external-db-xyz", labels=MIRRORED_SLICE_LABELS)},
        "mirrored-endpointslice",
    ),
    (
        "apiserver-kubernetes-endpointslice",
        "endpointslices",
        "discovery.k8s.io",
        {"metadata": meta("kubernetes", "default")},
        "apiserver-managed",
    ),
    (
        "mesh-managed-endpointslice",
        "endpointslices",
        "discovery.k8s.io",
        {"metadata": meta("vm-1", labels={"endpointslice.kubernetes.io/managed-by": "mesh.example.com"})},
        None,
    ),
    (
        "being-deleted",
        "configmaps",
        "",
        {"metadata": meta("old", deletionTimestamp="2025-03-02T10:00:00Z")},
        "being-deleted",
    ),
    ("custom-resource", "widgets", "example.com", {"metadata": meta("w")}, None),
]


@pytest.mark.parametrize(
    ("resource", "group", "obj", "reason"),
    [case[1:] for case in OBJECT_CASES],
    ids=[case[0] for case in OBJECT_CASES],
)
def test_object_rules(resource: str, group: str, obj: dict[str, Any], reason: str | None) -> None:
    assert skip_reason(resource, group, obj, services=SELECTOR_SERVICES) == reason


def test_reasons_are_plain_stable_strings() -> None:
    reason = skip_reason("secrets", "", SA_TOKEN_SECRET)
    assert reason == "service-account-token"
    assert isinstance(reason, str)
    assert json.dumps({"reason": reason}) == '{"reason": "service-account-token"}'
    assert {r.value for r in SkipReason} >= {
        "owned-by-controller",
        "kube-root-ca",
        "default-service-account",
        "endpoints-of-service",
        "being-deleted",
    }


def test_service_lookup_may_be_a_callable() -> None:
    asked: list[tuple[str, str]] = []

    def has_service(namespace: str, name: str) -> bool:
        asked.append((namespace, name))
        return name == "web"

    assert skip_reason("endpoints", "", {"metadata": meta("web")}, services=has_service) == "endpoints-of-service"
    assert skip_reason("endpoints", "", {"metadata": meta("other")}, services=has_service) is None
    assert asked == [("shop", "web"), ("shop", "other")]


def test_judging_endpoints_without_a_service_lookup_is_a_programming_error() -> None:
    with pytest.raises(TypeError, match="services="):
        skip_reason("endpoints", "", {"metadata": meta("web")})


def test_included_resource_objects_are_kept() -> None:
    assert skip_reason("events", "", {"metadata": meta("e")}, include={"events"}) is None


def test_services_with_selector_leaves_out_selectorless_services() -> None:
    services = [
        {"metadata": meta("web"), "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}},
        {"metadata": meta("external-db"), "spec": {"ports": [{"port": 5432}]}},
        {"metadata": meta("empty-selector"), "spec": {"selector": {}}},
        {"metadata": meta("kubernetes", "default"), "spec": {"ports": [{"port": 443}]}},
    ]
    assert services_with_selector(services) == {("shop", "web")}


def test_apiservices_the_api_server_registers_itself_are_skipped_and_added_ones_kept() -> None:
    automanaged = {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
                   "metadata": {"name": "v1.apps", "labels": {"kube-aggregator.kubernetes.io/automanaged": "onstart"}},
                   "spec": {"group": "apps", "version": "v1"}}
    added = {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
             "metadata": {"name": "v1beta1.metrics.k8s.io"},
             "spec": {"group": "metrics.k8s.io", "version": "v1beta1",
                      "service": {"namespace": "kube-system", "name": "metrics-server"}}}
    assert skip_reason("apiservices", "apiregistration.k8s.io", automanaged) == "apiserver-managed"
    assert skip_reason("apiservices", "apiregistration.k8s.io", added) is None


def test_the_default_service_cidr_is_the_api_servers_and_skipped() -> None:
    default = {"apiVersion": "networking.k8s.io/v1", "kind": "ServiceCIDR", "metadata": {"name": "kubernetes"}}
    extra = {"apiVersion": "networking.k8s.io/v1", "kind": "ServiceCIDR", "metadata": {"name": "extra-range"}}
    assert skip_reason("servicecidrs", "networking.k8s.io", default) == "apiserver-managed"
    assert skip_reason("servicecidrs", "networking.k8s.io", extra) is None


def test_service_ip_allocations_are_derived_and_skipped() -> None:
    assert resource_skip_reason("networking.k8s.io", "v1", "ipaddresses", {"list"}) == "derived:ipaddresses"
