"""The plan's data types: what is restored, in which step, and why there."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kubectl_state.core.kube.discovery import ApiResource
from kubectl_state.core.plan.tiers import TierTable


@dataclass(frozen=True, slots=True, order=True)
class ObjectId:
    """An object's identity in one cluster: its resource, namespace and name."""

    group: str
    resource: str
    namespace: str | None
    name: str

    @property
    def key(self) -> str:
        """A stable one-line key (the journal's)."""
        return f"{self.group}/{self.resource}/{self.namespace or ''}/{self.name}"

    def __str__(self) -> str:
        qualified = f"{self.resource}.{self.group}" if self.group else self.resource
        return f"{qualified} {self.namespace}/{self.name}" if self.namespace else f"{qualified} {self.name}"


@dataclass(frozen=True, slots=True)
class PlanInput:
    """One object read from an archive, as the plan takes it.

    `resolved` is False when no resource could be found for the object's kind (a YAML stream
    naming a type neither the target nor the import serves): it is still planned, so that it
    ends in the report as failed rather than disappearing."""

    source: ObjectId
    resource: ApiResource
    obj: dict[str, Any]
    old_uid: str | None = None
    resolved: bool = True


@dataclass(slots=True)
class PlannedObject:
    """One object to write. `obj` has its namespaces mapped; its owner references still
    carry the source uids (they are relinked at write time, when the new uids exist)."""

    id: ObjectId
    source: ObjectId
    resource: ApiResource
    obj: dict[str, Any]
    old_uid: str | None
    resolved: bool
    tier: int = 0
    level: int = 0
    #: Objects of this import that must be written first (owners, its namespace, its CRD).
    depends_on: list[ObjectId] = field(default_factory=list)
    #: Why it is in a later tier than its resource's, if it is.
    moved: str = ""

    @property
    def kind(self) -> str:
        return str(self.obj.get("kind") or self.resource.kind)


@dataclass(slots=True)
class Step:
    """Objects written in parallel; a step starts only when the previous one has ended."""

    tier: int
    tier_name: str
    level: int
    objects: list[PlannedObject]


@dataclass(slots=True)
class Plan:
    steps: list[Step]
    tiers: TierTable
    #: Objects of the archive left out by the user's filters (-n, -l, resources).
    filtered: int = 0

    def objects(self) -> list[PlannedObject]:
        return [obj for step in self.steps for obj in step.objects]

    def __len__(self) -> int:
        return sum(len(step.objects) for step in self.steps)

    def to_dict(self) -> dict[str, Any]:
        return {
            "objects": len(self),
            "filteredOut": self.filtered,
            "steps": [
                {
                    "tier": step.tier_name,
                    "level": step.level,
                    "objects": [_planned_dict(obj) for obj in step.objects],
                }
                for step in self.steps
            ],
        }


def _planned_dict(obj: PlannedObject) -> dict[str, Any]:
    out: dict[str, Any] = {
        "apiVersion": obj.resource.api_version,
        "kind": obj.kind,
        "namespace": obj.id.namespace,
        "name": obj.id.name,
    }
    if obj.source.namespace != obj.id.namespace:
        out["sourceNamespace"] = obj.source.namespace
    if obj.depends_on:
        out["after"] = [str(dep) for dep in obj.depends_on]
    if obj.moved:
        out["moved"] = obj.moved
    return out
