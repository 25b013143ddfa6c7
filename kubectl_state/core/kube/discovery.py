"""API discovery: which resources a server serves, in which version, and how to name them.

Reads the plain discovery documents (/api, /api/v1, /apis, /apis/<group>/<version>) that
every API server serves, fetching the group versions concurrently. Only the preferred
version of each group is kept by default, as `kubectl get` and Velero do, so an object
served under several versions is exported once.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from kubectl_state.core.errors import ApiError, UsageError
from kubectl_state.core.kube.client import KubeClient


@dataclass(frozen=True)
class ApiResource:
    group: str  # "" for the core group
    version: str
    resource: str  # plural name, e.g. "deployments"
    kind: str
    namespaced: bool
    verbs: frozenset[str] = field(default_factory=frozenset)
    short_names: tuple[str, ...] = ()
    singular: str = ""
    subresources: frozenset[str] = field(default_factory=frozenset)
    categories: tuple[str, ...] = ()

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def api_version(self) -> str:
        return self.group_version

    @property
    def qualified_name(self) -> str:
        """`resource.group` as kubectl and the archive name it; the core group is bare."""
        return f"{self.resource}.{self.group}" if self.group else self.resource

    @property
    def listable(self) -> bool:
        return "list" in self.verbs

    def collection_path(self, namespace: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if namespace is not None and self.namespaced:
            return f"{base}/namespaces/{namespace}/{self.resource}"
        return f"{base}/{self.resource}"

    def object_path(self, name: str, namespace: str | None = None) -> str:
        return f"{self.collection_path(namespace)}/{name}"


@dataclass(frozen=True)
class Discovery:
    """Everything a server serves. `resources` holds the preferred versions only."""

    resources: tuple[ApiResource, ...]
    all_versions: tuple[ApiResource, ...]

    def find(self, name: str) -> ApiResource:
        """Resolve a name as kubectl does: plural, singular, short name or kind, optionally
        `.group` qualified (`deploy`, `deployments.apps`, `Deployment`, `foos.example.com`).

        A bare name that several groups serve (`events`, `pods` with metrics.k8s.io) means the
        first in discovery order, the core group first, as kubectl's priority mapper decides."""
        matches = self.match(name)
        if not matches:
            raise UsageError(f'the server does not have a resource type "{name}"')
        return matches[0]

    def match(self, name: str) -> list[ApiResource]:
        lowered = name.lower()
        found = [r for r in self.resources if _names(r, lowered)]
        if found:
            return found
        if "." in lowered:
            head, group = lowered.split(".", 1)
            return [r for r in self.resources if r.group == group and _names(r, head)]
        return []


def _names(resource: ApiResource, lowered: str) -> bool:
    return lowered in (resource.resource, resource.singular, resource.kind.lower(), resource.qualified_name) or (
        lowered in resource.short_names
    )


def parse_resource_list(doc: dict[str, Any], group: str, version: str) -> list[ApiResource]:
    """Turn an APIResourceList into resources, folding `x/status`-style entries into their parent."""
    entries = doc.get("resources") or []
    subresources: dict[str, set[str]] = {}
    for entry in entries:
        name = str(entry.get("name", ""))
        if "/" in name:
            parent, sub = name.split("/", 1)
            subresources.setdefault(parent, set()).add(sub)
    result = []
    for entry in entries:
        name = str(entry.get("name", ""))
        if not name or "/" in name:
            continue
        result.append(ApiResource(
            group=group,
            version=version,
            resource=name,
            kind=str(entry.get("kind", "")),
            namespaced=bool(entry.get("namespaced", False)),
            verbs=frozenset(str(v) for v in entry.get("verbs") or ()),
            short_names=tuple(str(s) for s in entry.get("shortNames") or ()),
            singular=str(entry.get("singularName") or ""),
            subresources=frozenset(subresources.get(name, ())),
            categories=tuple(str(c) for c in entry.get("categories") or ()),
        ))
    return result


def discover(kube: KubeClient, *, concurrency: int = 8) -> Discovery:
    """Read the server's discovery documents. A group version whose document fails with a
    server error (an aggregated API that is down) is left out, as kubectl does; a failure
    to reach the server at all is raised."""
    targets: list[tuple[str, str, str, bool]] = []  # (path, group, version, preferred)
    core = kube.get("/api")
    for version in core.get("versions") or ():
        targets.append((f"/api/{version}", "", str(version), version == (core.get("versions") or [None])[0]))
    groups = kube.get("/apis")
    for group in groups.get("groups") or ():
        name = str(group.get("name", ""))
        preferred_version = (group.get("preferredVersion") or {}).get("version")
        for version in group.get("versions") or ():
            ver = str(version.get("version", ""))
            targets.append((f"/apis/{name}/{ver}", name, ver, ver == preferred_version))

    def fetch(target: tuple[str, str, str, bool]) -> list[ApiResource]:
        path, group, version, _ = target
        try:
            return parse_resource_list(kube.get(path), group, version)
        except ApiError as exc:
            if exc.code == 404 or exc.code >= 500:
                return []
            raise

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        lists = list(pool.map(fetch, targets))
    every: list[ApiResource] = []
    preferred: list[ApiResource] = []
    for (_, _, _, is_preferred), resources in zip(targets, lists, strict=True):
        every.extend(resources)
        if is_preferred:
            preferred.extend(resources)
    return Discovery(tuple(preferred), tuple(every))
