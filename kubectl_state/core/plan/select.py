"""Restoring a subset of an archive (`-n`, `-l`, `--include-resources`, `--exclude-resources`).

The filters pick objects by their identity in the archive (source namespaces, before any
mapping). What a picked object cannot live without comes along unless the resource filters
exclude it: its Namespace, the CRD of its type, the PersistentVolume a picked claim is bound
to, the ClusterRole a picked RoleBinding grants. Without them a subset restored into an
empty cluster would fail object by object ("namespace not found", "no matches for kind").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kubectl_state.core.plan.model import ObjectId, PlanInput
from kubectl_state.core.transform.selectors import Selector

_CRDS = ("apiextensions.k8s.io", "customresourcedefinitions")
_RBAC = "rbac.authorization.k8s.io"


@dataclass(frozen=True)
class Selection:
    namespaces: frozenset[str] = frozenset()
    selector: Selector | None = None
    #: (group, resource) pairs; None: every resource.
    include: frozenset[tuple[str, str]] | None = None
    exclude: frozenset[tuple[str, str]] = frozenset()

    @property
    def everything(self) -> bool:
        return not self.namespaces and self.selector is None and self.include is None and not self.exclude

    def resource_allowed(self, group: str, resource: str) -> bool:
        key = (group, resource)
        return key not in self.exclude and (self.include is None or key in self.include)

    def picks(self, item: PlanInput) -> bool:
        source = item.source
        if not self.resource_allowed(source.group, source.resource):
            return False
        if self.namespaces:
            if source.namespace is not None and source.namespace not in self.namespaces:
                return False
            if source.namespace is None and (source.group, source.resource) != ("", "namespaces"):
                return False  # cluster-scoped objects come only as what picked objects need
            if source.namespace is None and source.name not in self.namespaces:
                return False
        if self.selector is not None:
            labels = (item.obj.get("metadata") or {}).get("labels")
            if not self.selector.matches(labels if isinstance(labels, dict) else None):
                return False
        return True


def select(inputs: Iterable[PlanInput], selection: Selection) -> tuple[list[PlanInput], int]:
    """The inputs to restore, in their original order, and how many were left out."""
    items = list(inputs)
    if selection.everything:
        return items, 0
    picked = [selection.picks(item) for item in items]
    needed: set[ObjectId] = set()
    crd_names = _crd_names(items)
    for item, chosen in zip(items, picked, strict=True):
        if chosen:
            needed.update(_needs(item, crd_names))
    kept = [
        item
        for item, chosen in zip(items, picked, strict=True)
        if chosen
        or (item.source in needed and selection.resource_allowed(item.source.group, item.source.resource))
    ]
    return kept, len(items) - len(kept)


def _crd_names(items: list[PlanInput]) -> dict[tuple[str, str], str]:
    """(group, plural) -> CRD name, for the CRDs in the archive."""
    found: dict[tuple[str, str], str] = {}
    for item in items:
        if (item.source.group, item.source.resource) == _CRDS:
            spec = item.obj.get("spec") or {}
            plural = (spec.get("names") or {}).get("plural")
            if isinstance(spec.get("group"), str) and isinstance(plural, str):
                found[(spec["group"], plural)] = item.source.name
    return found


def _needs(item: PlanInput, crd_names: dict[tuple[str, str], str]) -> list[ObjectId]:
    source = item.source
    out: list[ObjectId] = []
    if source.namespace is not None:
        out.append(ObjectId("", "namespaces", None, source.namespace))
    crd = crd_names.get((source.group, source.resource))
    if crd is not None:
        out.append(ObjectId(*_CRDS, None, crd))
    spec: Any = item.obj.get("spec") or {}
    if (source.group, source.resource) == ("", "persistentvolumeclaims") and isinstance(spec.get("volumeName"), str):
        out.append(ObjectId("", "persistentvolumes", None, spec["volumeName"]))
    if (source.group, source.resource) == (_RBAC, "rolebindings"):
        role = item.obj.get("roleRef") or {}
        if role.get("kind") == "ClusterRole" and isinstance(role.get("name"), str):
            out.append(ObjectId(_RBAC, "clusterroles", None, role["name"]))
    return out
