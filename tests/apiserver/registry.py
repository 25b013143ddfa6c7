"""The resource table and kube-apiserver's etcd key layout.

A resource is identified by (group, version, plural). Versions of one group resource share
one storage location (autoscaling/v1 and v2 HorizontalPodAutoscalers, core and
events.k8s.io Events), as in kube-apiserver, so the key never contains the version.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Built-in resources kube-apiserver stores under a name other than their plural.
SPECIAL_KEY_PREFIXES: dict[tuple[str, str], str] = {
    ("", "services"): "services/specs",
    ("", "endpoints"): "services/endpoints",
    ("", "nodes"): "minions",
    ("", "replicationcontrollers"): "controllers",
    ("networking.k8s.io", "ingresses"): "ingress",
    ("extensions", "ingresses"): "ingress",
}

#: Groups compiled into kube-apiserver: their keys omit the group. Everything else (CRDs'
#: own group, custom resources, the aggregator's APIServices) is keyed with its group.
BUILTIN_GROUPS = frozenset(
    {
        "",
        "apps",
        "events.k8s.io",
        "authentication.k8s.io",
        "authorization.k8s.io",
        "autoscaling",
        "batch",
        "certificates.k8s.io",
        "networking.k8s.io",
        "policy",
        "rbac.authorization.k8s.io",
        "storage.k8s.io",
        "admissionregistration.k8s.io",
        "scheduling.k8s.io",
        "coordination.k8s.io",
        "node.k8s.io",
        "discovery.k8s.io",
        "flowcontrol.apiserver.k8s.io",
        "resource.k8s.io",
        "storagemigration.k8s.io",
        "internal.apiserver.k8s.io",
    }
)

#: Served by another server behind the aggregator (metrics-server): listed, never stored.
AGGREGATED_GROUPS = frozenset({"metrics.k8s.io", "custom.metrics.k8s.io", "external.metrics.k8s.io"})

#: Read-only or create-only built-ins whose objects kube-apiserver computes, never stores.
VIRTUAL_RESOURCES = frozenset(
    {
        ("", "bindings"),
        ("", "componentstatuses"),
        ("authentication.k8s.io", "selfsubjectreviews"),
        ("authentication.k8s.io", "tokenreviews"),
        ("authorization.k8s.io", "localsubjectaccessreviews"),
        ("authorization.k8s.io", "selfsubjectaccessreviews"),
        ("authorization.k8s.io", "selfsubjectrulesreviews"),
        ("authorization.k8s.io", "subjectaccessreviews"),
    }
)


def storage_resource_path(group: str, resource: str) -> str:
    """The part of the key between the prefix and the namespace: `services/specs`, `apps`-less
    `deployments`, `apiextensions.k8s.io/customresourcedefinitions`, `example.com/widgets`."""
    special = SPECIAL_KEY_PREFIXES.get((group, resource))
    if special:
        return special
    if group in BUILTIN_GROUPS:
        return resource
    return f"{group}/{resource}"


@dataclass(frozen=True)
class ResourceInfo:
    """One served resource of one group version, as discovery describes it."""

    group: str
    version: str
    resource: str
    kind: str
    namespaced: bool
    verbs: tuple[str, ...]
    singular: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: frozenset[str] = frozenset()
    #: The name of the CustomResourceDefinition serving it, "" for built-ins.
    crd_name: str = ""
    discovery: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def api_version(self) -> str:
        return self.group_version

    @property
    def stored(self) -> bool:
        """Whether objects of it live in etcd (everything but aggregated and computed APIs)."""
        return (
            self.group not in AGGREGATED_GROUPS
            and (self.group, self.resource) not in VIRTUAL_RESOURCES
            and "create" in self.verbs
            and "list" in self.verbs
        )

    @property
    def key_resource(self) -> str:
        return storage_resource_path(self.group, self.resource)

    def key(self, prefix: str, namespace: str | None, name: str) -> bytes:
        """The etcd key of one object: `<prefix>/<resource path>/[<ns>/]<name>`."""
        if self.namespaced:
            return f"{prefix}/{self.key_resource}/{namespace}/{name}".encode()
        return f"{prefix}/{self.key_resource}/{name}".encode()

    def collection_prefix(self, prefix: str, namespace: str | None) -> bytes:
        """The etcd key prefix of a list: all namespaces, one namespace, or cluster-scoped."""
        if self.namespaced and namespace:
            return f"{prefix}/{self.key_resource}/{namespace}/".encode()
        return f"{prefix}/{self.key_resource}/".encode()

    def has_status(self) -> bool:
        return "status" in self.subresources


class ResourceTable:
    """Resolves URL parts to `ResourceInfo`; built from discovery documents.

    Built-ins are fixed for the life of the process; custom resources are replaced as a
    whole whenever CustomResourceDefinitions are re-read from etcd (see crd.py), so that
    several replicas agree through etcd alone.
    """

    def __init__(self, builtin: list[ResourceInfo]) -> None:
        self._builtin = {(r.group, r.version, r.resource): r for r in builtin}
        self._custom: dict[tuple[str, str, str], ResourceInfo] = {}

    def set_custom(self, infos: list[ResourceInfo]) -> None:
        self._custom = {(r.group, r.version, r.resource): r for r in infos}

    def lookup(self, group: str, version: str, resource: str) -> ResourceInfo | None:
        key = (group, version, resource)
        return self._builtin.get(key) or self._custom.get(key)

    def builtin(self) -> list[ResourceInfo]:
        return list(self._builtin.values())

    def custom(self) -> list[ResourceInfo]:
        return list(self._custom.values())

    def all(self) -> list[ResourceInfo]:
        return self.builtin() + self.custom()

    def namespaced_storage(self) -> list[ResourceInfo]:
        """One entry per stored namespaced group resource (what a namespace deletion empties)."""
        seen: dict[str, ResourceInfo] = {}
        for info in self.all():
            if info.namespaced and info.stored:
                seen.setdefault(info.key_resource, info)
        return list(seen.values())

    def by_kind(self, group: str, version: str, kind: str) -> ResourceInfo | None:
        for info in self.all():
            if info.group == group and info.version == version and info.kind == kind:
                return info
        return None
