"""Building the restore plan: map namespaces, then place every object in a step.

An object's step is (tier, level). Its tier is its resource's tier (tiers.py) or, if later,
the tier of anything it depends on in this import; its level, inside that tier, is one more
than the deepest dependency in the same tier. Dependencies are its owners (by the source
uids the manifest recorded), its Namespace and the CRD of its type. So owners come before
dependents even when the dependent's resource has an earlier tier (a ConfigMap owned by a
Deployment is written after the Deployment, with a note saying why), and a custom resource
always comes after its CRD, whatever a user's tier file says.

`transform.owner_levels` orders by owners alone; the plan needs namespace and CRD edges
and tier constraints in the same walk, so it runs its own Kahn's algorithm over all three
(and refuses cycles and duplicate uids the same way).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kubectl_state.core.errors import InvalidInputError
from kubectl_state.core.plan.model import ObjectId, Plan, PlanInput, PlannedObject, Step
from kubectl_state.core.plan.tiers import TierTable
from kubectl_state.core.transform.namespaces import map_namespaces

_CRDS = ("apiextensions.k8s.io", "customresourcedefinitions")


def target_id(source: ObjectId, mapping: Mapping[str, str]) -> ObjectId:
    """Where an archived object lands: its namespace mapped, and a Namespace's own name."""
    namespace = mapping.get(source.namespace, source.namespace) if source.namespace is not None else None
    name = source.name
    if (source.group, source.resource) == ("", "namespaces"):
        name = mapping.get(name, name)
    return ObjectId(source.group, source.resource, namespace, name)


def build_plan(
    inputs: Iterable[PlanInput],
    *,
    tiers: TierTable | None = None,
    namespace_mapping: Mapping[str, str] | None = None,
    filtered: int = 0,
) -> Plan:
    tiers = tiers or TierTable()
    mapping = dict(namespace_mapping or {})
    planned = [_prepare(item, mapping) for item in inputs]
    deps = _dependencies(planned)
    for index in _topological(planned, deps):
        _place(planned[index], [planned[dep] for dep in deps[index]], tiers)

    steps: dict[tuple[int, int], list[PlannedObject]] = {}
    for obj in planned:
        steps.setdefault((obj.tier, obj.level), []).append(obj)
    ordered = [Step(tier, tiers.name(tier), level, objs) for (tier, level), objs in sorted(steps.items())]
    return Plan(ordered, tiers, filtered)


def _dependencies(planned: list[PlannedObject]) -> list[list[int]]:
    """For each object, the indexes of the objects it depends on (owners, namespace, CRD)."""
    by_id: dict[ObjectId, int] = {}
    by_uid: dict[str, int] = {}
    for index, obj in enumerate(planned):
        if obj.id in by_id:
            raise InvalidInputError(f"the import holds {obj.id} twice (after namespace mapping)")
        by_id[obj.id] = index
        if obj.old_uid:
            if obj.old_uid in by_uid:
                other = planned[by_uid[obj.old_uid]].id
                raise InvalidInputError(f"two objects claim the same uid {obj.old_uid}: {other} and {obj.id}")
            by_uid[obj.old_uid] = index
    crds = _crd_index(planned)
    deps: list[list[int]] = []
    for index, obj in enumerate(planned):
        candidates = [by_uid.get(uid) for uid in _owner_uids(obj.obj)]
        if obj.id.namespace is not None:
            candidates.append(by_id.get(ObjectId("", "namespaces", None, obj.id.namespace)))
        candidates.append(crds.get((obj.resource.group, obj.resource.resource)))
        found = list(dict.fromkeys(dep for dep in candidates if dep is not None and dep != index))
        deps.append(found)
        obj.depends_on = [planned[dep].id for dep in found]
    return deps


def _place(obj: PlannedObject, deps: list[PlannedObject], tiers: TierTable) -> None:
    """Set the object's tier and level; its dependencies are already placed."""
    own = tiers.index(obj.resource.group, obj.resource.resource)
    tier, cause = own, ""
    for before in deps:
        if before.tier > tier:
            tier, cause = before.tier, str(before.id)
    obj.tier = tier
    obj.level = max((before.level + 1 for before in deps if before.tier == tier), default=0)
    if tier != own:
        obj.moved = f"after {cause}, which it depends on"


def _prepare(item: PlanInput, mapping: Mapping[str, str]) -> PlannedObject:
    obj = map_namespaces(item.obj, mapping) if mapping else item.obj
    return PlannedObject(
        id=target_id(item.source, mapping),
        source=item.source,
        resource=item.resource,
        obj=obj,
        old_uid=item.old_uid,
        resolved=item.resolved,
    )


def _owner_uids(obj: Mapping[str, Any]) -> list[str]:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return [ref["uid"] for ref in refs if isinstance(ref, Mapping) and isinstance(ref.get("uid"), str)]


def _crd_index(planned: list[PlannedObject]) -> dict[tuple[str, str], int]:
    """(group, plural) -> index of the CRD in the plan that defines that resource."""
    found: dict[tuple[str, str], int] = {}
    for index, obj in enumerate(planned):
        if (obj.id.group, obj.id.resource) == _CRDS:
            spec = obj.obj.get("spec") or {}
            plural = (spec.get("names") or {}).get("plural")
            if isinstance(spec.get("group"), str) and isinstance(plural, str):
                found[(spec["group"], plural)] = index
    return found


def _topological(planned: list[PlannedObject], deps: list[list[int]]) -> list[int]:
    """Indexes with every dependency before its dependents; InvalidInputError on a cycle."""
    waiting = [len(found) for found in deps]
    dependents: list[list[int]] = [[] for _ in planned]
    for index, found in enumerate(deps):
        for dep in found:
            dependents[dep].append(index)
    ready = [index for index, count in enumerate(waiting) if count == 0]
    order: list[int] = []
    while ready:
        index = ready.pop()
        order.append(index)
        for dependent in dependents[index]:
            waiting[dependent] -= 1
            if waiting[dependent] == 0:
                ready.append(dependent)
    if len(order) < len(planned):
        stuck = [str(planned[index].id) for index, count in enumerate(waiting) if count > 0]
        more = f" (and {len(stuck) - 5} more)" if len(stuck) > 5 else ""
        raise InvalidInputError(
            "owner references form a cycle; nothing can be restored owners-first among: "
            + ", ".join(stuck[:5])
            + more
        )
    return order
