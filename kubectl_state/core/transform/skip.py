"""What an export leaves out, and why.

Two levels, both pure:
- `resource_skip_reason` judges a discovery entry: resources that are not stored (computed
  on request, create-only actions, aggregated metrics), not listable, or that only describe
  the source cluster's machines and moment (nodes, events, leases...). Skipping at this
  level means the resource is never even listed.
- `skip_reason` judges one object: what the cluster derives itself and would re-create
  (controller-owned pods, endpoints of a service, service-account tokens...).

Every reason is a stable string (`SkipReason` values and the `reason` of the table rows),
recorded in the export manifest and its counts, so scripts may match on them.

The resource-level rules are one table, `DEFAULT_SKIPPED_RESOURCES`, that the CLI can show;
`--include-resources` brings a table row back by passing its resource name in `include`.
The structural rules (subresources, resources without a list verb) cannot be overridden:
there is nothing to list.
"""

from __future__ import annotations

import enum
import fnmatch
from collections.abc import Callable, Collection, Container, Iterable, Mapping, Set
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

from kubectl_state.core.transform._json import api_group, child, child_list


class SkipReason(enum.StrEnum):
    """Stable reasons for skipping one object or one resource."""

    # Resource level, structural (never overridable).
    SUBRESOURCE = "subresource"
    NOT_LISTABLE = "not-listable"
    # Object level.
    BEING_DELETED = "being-deleted"
    OWNED_BY_CONTROLLER = "owned-by-controller"
    ENDPOINTS_OF_SERVICE = "endpoints-of-service"
    MIRRORED_ENDPOINTSLICE = "mirrored-endpointslice"
    APISERVER_MANAGED = "apiserver-managed"
    # (S105: names of things, not credentials.)
    SERVICE_ACCOUNT_TOKEN = "service-account-token"  # noqa: S105
    KUBE_ROOT_CA = "kube-root-ca"
    DEFAULT_SERVICE_ACCOUNT = "default-service-account"


#: What makes a resource name of the skip table a shell-style pattern.
_WILDCARDS = frozenset("*?[")


@dataclass(frozen=True)
class SkippedResource:
    """One row of the resource-level skip table.

    `group` is the API group ("" for core). `resource` is the plural resource name, or a
    shell-style pattern ("*reviews", "*") matched against it. `why` is for people (help
    text, `--list-skipped`); `reason` is the stable string recorded in the manifest.
    """

    group: str
    resource: str
    reason: str
    why: str

    def matches(self, group: str, resource: str) -> bool:
        if group != self.group:
            return False
        # Most rows name one resource: compiling each into a regex for fnmatch costs an
        # export tens of milliseconds for nothing.
        if not _WILDCARDS.intersection(self.resource):
            return resource == self.resource
        return fnmatch.fnmatchcase(resource, self.resource)


#: Resources an export skips by default, first match wins. Each can be brought back with
#: `include` (the CLI's `--include-resources`), unless it is not listable anyway.
DEFAULT_SKIPPED_RESOURCES: Final[tuple[SkippedResource, ...]] = (
    SkippedResource(
        "", "events", "derived:events", "records of what happened in the source cluster; expire after an hour"
    ),
    # The same objects as core events, served a second time through another group.
    SkippedResource(
        "events.k8s.io",
        "events",
        "derived:events",
        "records of what happened in the source cluster; expire after an hour",
    ),
    SkippedResource(
        "coordination.k8s.io",
        "leases",
        "derived:leases",
        "leader election and node heartbeats, renewed every few seconds by their holders",
    ),
    SkippedResource(
        "apps",
        "controllerrevisions",
        "derived:controllerrevisions",
        "rollout history the StatefulSet and DaemonSet controllers write for themselves",
    ),
    # Velero never restores nodes either. A Node object is registered by its kubelet and only
    # means something while that kubelet runs; a restored one stays NotReady and drags the
    # node lifecycle controller into tainting and evicting. Labels and taints people set on
    # nodes are lost unless nodes are included, which exports them for reference.
    SkippedResource(
        "", "nodes", "cluster:nodes", "registered by each node's kubelet; a restored Node has no kubelet behind it"
    ),
    SkippedResource(
        "storage.k8s.io",
        "volumeattachments",
        "cluster:volumeattachments",
        "attach state of volumes to the source cluster's nodes, kept by the attach/detach controller",
    ),
    SkippedResource(
        "storage.k8s.io", "csinodes", "cluster:csinodes", "written by each node's kubelet for the CSI drivers it runs"
    ),
    SkippedResource(
        "", "componentstatuses", "not-stored:componentstatuses", "computed on request (deprecated), not stored"
    ),
    SkippedResource("", "bindings", "not-stored:bindings", "a create-only action that assigns a pod to a node"),
    SkippedResource(
        "authentication.k8s.io",
        "*reviews",
        "not-stored:reviews",
        "create-only questions to the API server, answered and never stored",
    ),
    SkippedResource(
        "authorization.k8s.io",
        "*reviews",
        "not-stored:reviews",
        "create-only questions to the API server, answered and never stored",
    ),
    # One IPAddress per allocated Service clusterIP (Kubernetes 1.31+ allocator). Export drops
    # clusterIPs so the target allocates new ones; restoring these would reserve the old
    # addresses and make those allocations fail.
    SkippedResource(
        "networking.k8s.io",
        "ipaddresses",
        "derived:ipaddresses",
        "the API server's record of which Service cluster IPs are allocated",
    ),
    SkippedResource(
        "metrics.k8s.io",
        "*",
        "aggregated:metrics",
        "live measurements served by metrics-server (an aggregated API), not stored",
    ),
    SkippedResource(
        "custom.metrics.k8s.io",
        "*",
        "aggregated:metrics",
        "live measurements served by a metrics adapter (an aggregated API), not stored",
    ),
    SkippedResource(
        "external.metrics.k8s.io",
        "*",
        "aggregated:metrics",
        "live measurements served by a metrics adapter (an aggregated API), not stored",
    ),
)

#: Answers "does a Service `namespace/name` exist whose Endpoints the cluster maintains":
#: a callable `(namespace, name) -> bool`, or a container of `(namespace, name)` pairs such
#: as the one `services_with_selector` builds.
ServiceLookup: TypeAlias = Callable[[str, str], bool] | Container[tuple[str, str]]

_ENDPOINTSLICE_MANAGED_BY: Final = "endpointslice.kubernetes.io/managed-by"
_ENDPOINTSLICE_CONTROLLER: Final = "endpointslice-controller.k8s.io"
_ENDPOINTSLICE_MIRRORING_CONTROLLER: Final = "endpointslicemirroring-controller.k8s.io"
_SERVICE_ACCOUNT_TOKEN_TYPE: Final = "kubernetes.io/service-account-token"  # noqa: S105 (a Secret type)
_KUBE_ROOT_CA: Final = "kube-root-ca.crt"
_LAST_APPLIED: Final = "kubectl.kubernetes.io/last-applied-configuration"


def is_included(group: str, resource: str, include: Set[str]) -> bool:
    """True when `include` names this resource, as kubectl does: "events" or "events.events.k8s.io"."""
    return resource in include or (bool(group) and f"{resource}.{group}" in include)


def resource_skip_reason(
    group: str,
    version: str,
    resource: str,
    verbs: Collection[str],
    *,
    include: Set[str] = frozenset(),
    rules: Iterable[SkippedResource] = DEFAULT_SKIPPED_RESOURCES,
) -> str | None:
    """Why the export does not list this discovery entry, or None to list it.

    `version` is taken so a discovery entry maps onto the arguments one to one; no default
    rule depends on it (every version of a resource is the same stored objects).
    """
    del version  # see docstring
    if "/" in resource:
        # pods/log, deployments/scale...: views of their parent, stored with it.
        return SkipReason.SUBRESOURCE
    if not is_included(group, resource, include):
        for rule in rules:
            if rule.matches(group, resource):
                return rule.reason
    if "list" not in verbs:
        return SkipReason.NOT_LISTABLE
    return None


def skip_reason(
    resource: str,
    group: str,
    obj: Mapping[str, Any],
    *,
    services: ServiceLookup | None = None,
    include: Set[str] = frozenset(),
    rules: Iterable[SkippedResource] = DEFAULT_SKIPPED_RESOURCES,
) -> str | None:
    """Why the export leaves out this object, or None to keep it.

    `services` is needed to judge core Endpoints (a TypeError says so if it is missing):
    it must answer for Services that *have a selector* — their Endpoints are written by
    the endpoints controller — and not for selector-less Services, whose Endpoints a person
    wrote and the export must keep. `services_with_selector` builds it from Service objects.

    `include` and `rules` are those given to `resource_skip_reason`, so an object of a
    skipped resource that reaches this function anyway gets the same answer.
    """
    if not is_included(group, resource, include):
        for rule in rules:
            if rule.matches(group, resource):
                return rule.reason
    metadata = child(obj, "metadata") or {}
    if metadata.get("deletionTimestamp"):
        # Already on its way out of the source cluster (Velero skips these too).
        return SkipReason.BEING_DELETED
    judge = _OBJECT_RULES.get((group, resource))
    if judge is None:
        return None
    return judge(obj, metadata, services)


def services_with_selector(services: Iterable[Mapping[str, Any]]) -> frozenset[tuple[str, str]]:
    """The `(namespace, name)` of each Service whose Endpoints the endpoints controller maintains."""
    found: set[tuple[str, str]] = set()
    for service in services:
        metadata = child(service, "metadata") or {}
        # An empty selector is no selector: the endpoints controller leaves such a Service alone.
        if (child(service, "spec") or {}).get("selector"):
            found.add((str(metadata.get("namespace") or ""), str(metadata.get("name") or "")))
    return frozenset(found)


_ObjectRule: TypeAlias = Callable[[Mapping[str, Any], Mapping[str, Any], ServiceLookup | None], str | None]


def _controller_owner(metadata: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The owner reference marked `controller: true` (the API allows at most one)."""
    for ref in child_list(metadata, "ownerReferences") or []:
        if isinstance(ref, Mapping) and ref.get("controller") is True:
            return ref
    return None


def _is_apiserver_kubernetes(metadata: Mapping[str, Any]) -> bool:
    # default/kubernetes (the Service, its Endpoints and EndpointSlice) is created and kept up
    # to date by every kube-apiserver with its own addresses; the target already has its own.
    return metadata.get("namespace") == "default" and metadata.get("name") == "kubernetes"


def _judge_pod(obj: Mapping[str, Any], metadata: Mapping[str, Any], services: ServiceLookup | None) -> str | None:
    # Any controller: ReplicaSets, Jobs, StatefulSets, DaemonSets, operators' custom
    # resources, and Nodes for the kubelet's mirror pods. Each re-creates its pods.
    return SkipReason.OWNED_BY_CONTROLLER if _controller_owner(metadata) is not None else None


def _owned_by(kind: str, group: str) -> _ObjectRule:
    # ReplicaSets and Jobs are exported unless their controller is the one named here (a
    # Deployment, a CronJob), which re-creates them from its template. Owned by anything
    # else (Argo Rollouts, an operator), they are kept and relinked on import.
    def judge(obj: Mapping[str, Any], metadata: Mapping[str, Any], services: ServiceLookup | None) -> str | None:
        owner = _controller_owner(metadata)
        if owner is not None and owner.get("kind") == kind and api_group(owner.get("apiVersion")) == group:
            return SkipReason.OWNED_BY_CONTROLLER
        return None

    return judge


def _judge_service(obj: Mapping[str, Any], metadata: Mapping[str, Any], services: ServiceLookup | None) -> str | None:
    return SkipReason.APISERVER_MANAGED if _is_apiserver_kubernetes(metadata) else None


def _judge_endpoints(obj: Mapping[str, Any], metadata: Mapping[str, Any], services: ServiceLookup | None) -> str | None:
    if _is_apiserver_kubernetes(metadata):
        return SkipReason.APISERVER_MANAGED
    if services is None:
        raise TypeError("skip_reason() needs services= to judge core/v1 endpoints")
    key = (str(metadata.get("namespace") or ""), str(metadata.get("name") or ""))
    known = services(*key) if callable(services) else key in services
    return SkipReason.ENDPOINTS_OF_SERVICE if known else None


def _judge_endpointslice(
    obj: Mapping[str, Any], metadata: Mapping[str, Any], services: ServiceLookup | None
) -> str | None:
    if _is_apiserver_kubernetes(metadata):
        return SkipReason.APISERVER_MANAGED
    managed_by = (child(metadata, "labels") or {}).get(_ENDPOINTSLICE_MANAGED_BY)
    if managed_by == _ENDPOINTSLICE_CONTROLLER:
        return SkipReason.ENDPOINTS_OF_SERVICE
    if managed_by == _ENDPOINTSLICE_MIRRORING_CONTROLLER:
        # Mirrored from hand-written Endpoints, which are exported; mirroring runs again.
        return SkipReason.MIRRORED_ENDPOINTSLICE
    # Slices with another manager (a service mesh, a person) are nobody's derivative here.
    return None


def _judge_secret(obj: Mapping[str, Any], metadata: Mapping[str, Any], services: ServiceLookup | None) -> str | None:
    # The token inside was signed by the source cluster's service-account key and is worth
    # nothing (or, worse, a live credential) elsewhere; the token controller fills new ones.
    return SkipReason.SERVICE_ACCOUNT_TOKEN if obj.get("type") == _SERVICE_ACCOUNT_TOKEN_TYPE else None


def _judge_configmap(obj: Mapping[str, Any], metadata: Mapping[str, Any], services: ServiceLookup | None) -> str | None:
    # Published into every namespace by the root CA publisher with the cluster's own CA.
    return SkipReason.KUBE_ROOT_CA if metadata.get("name") == _KUBE_ROOT_CA else None


def _judge_serviceaccount(
    obj: Mapping[str, Any], metadata: Mapping[str, Any], services: ServiceLookup | None
) -> str | None:
    if metadata.get("name") != "default" or _default_account_changed(obj, metadata):
        return None
    # The service-account controller creates "default" in every namespace; exporting an
    # untouched one only makes every import collide with it.
    return SkipReason.DEFAULT_SERVICE_ACCOUNT


def _default_account_changed(obj: Mapping[str, Any], metadata: Mapping[str, Any]) -> bool:
    """True when someone changed a namespace's default service account from what the cluster made."""
    if child(metadata, "labels"):
        return True
    # The last-applied annotation alone says "applied", not what; any real change shows up
    # in the fields below.
    if any(name != _LAST_APPLIED for name in child(metadata, "annotations") or {}):
        return True
    # Pull secrets and automountServiceAccountToken: false (a common hardening) are choices.
    if obj.get("imagePullSecrets") or "automountServiceAccountToken" in obj:
        return True
    # Before 1.24 the token controller listed its own token secret here; anything else was added.
    for ref in child_list(obj, "secrets") or []:
        name = ref.get("name") if isinstance(ref, Mapping) else None
        if not (isinstance(name, str) and name.startswith("default-token-")):
            return True
    return False


def _judge_apiservice(
    obj: Mapping[str, Any], metadata: Mapping[str, Any], services: ServiceLookup | None
) -> str | None:
    # kube-apiserver registers an APIService for every group it serves itself and keeps them
    # in step with its version (label kube-aggregator.kubernetes.io/automanaged); only the
    # ones people added for their own aggregated servers are worth restoring.
    if "kube-aggregator.kubernetes.io/automanaged" in (child(metadata, "labels") or {}):
        return SkipReason.APISERVER_MANAGED
    return None


def _judge_servicecidr(
    obj: Mapping[str, Any], metadata: Mapping[str, Any], services: ServiceLookup | None
) -> str | None:
    # The "kubernetes" ServiceCIDR mirrors --service-cluster-ip-range of the API server.
    return SkipReason.APISERVER_MANAGED if metadata.get("name") == "kubernetes" else None


_OBJECT_RULES: Final[Mapping[tuple[str, str], _ObjectRule]] = {
    ("apiregistration.k8s.io", "apiservices"): _judge_apiservice,
    ("networking.k8s.io", "servicecidrs"): _judge_servicecidr,
    ("", "pods"): _judge_pod,
    ("apps", "replicasets"): _owned_by("Deployment", "apps"),
    ("batch", "jobs"): _owned_by("CronJob", "batch"),
    ("", "services"): _judge_service,
    ("", "endpoints"): _judge_endpoints,
    ("discovery.k8s.io", "endpointslices"): _judge_endpointslice,
    ("", "secrets"): _judge_secret,
    ("", "configmaps"): _judge_configmap,
    ("", "serviceaccounts"): _judge_serviceaccount,
}
