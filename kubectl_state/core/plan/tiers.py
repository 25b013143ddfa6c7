"""The restore tiers: which resources are written before which, as data in one place.

Each tier names resources (`resource.group`, or the bare plural for the core group); every
resource not named falls into the tier of the marker `*` ("the rest"), which comes after
the named ones unless a tier file puts names after it. The order follows what a resource
needs to exist before it can be created and work: CRDs before anything of their types,
namespaces before what lives in them, storage classes and priority classes before the
volumes and workloads that name them, RBAC and service accounts before the workloads that
run as them, secrets and config maps before the pods that mount them.

A user can replace the list for one import (`--tiers FILE`, a YAML list of names). CRDs and
namespaces are always the first two tiers whatever the file says: every later object may
be of a custom type or live in a namespace, and the import waits for CRDs to be Established
before it goes on (see workflows/restore).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from kubectl_state.core.errors import InvalidInputError, UsageError

CRDS: Final = "customresourcedefinitions.apiextensions.k8s.io"
NAMESPACES: Final = "namespaces"
#: Stands for every resource no tier names.
REST: Final = "*"

DEFAULT_TIERS: Final[tuple[str, ...]] = (
    CRDS,
    NAMESPACES,
    "storageclasses.storage.k8s.io",
    "priorityclasses.scheduling.k8s.io",
    "persistentvolumes",
    "persistentvolumeclaims",
    "clusterroles.rbac.authorization.k8s.io",
    "roles.rbac.authorization.k8s.io",
    "serviceaccounts",
    "clusterrolebindings.rbac.authorization.k8s.io",
    "rolebindings.rbac.authorization.k8s.io",
    "secrets",
    "configmaps",
    "limitranges",
    "resourcequotas",
    REST,
)

_MAX_TIERS = 1000


def qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


@dataclass(frozen=True)
class TierTable:
    """An ordered list of tier names; `index(group, resource)` places a resource."""

    names: tuple[str, ...] = DEFAULT_TIERS

    def __post_init__(self) -> None:
        if self.names[:2] != (CRDS, NAMESPACES) or self.names.count(REST) != 1:
            raise InvalidInputError("a tier table starts with CRDs and namespaces and holds '*' once")

    @property
    def rest(self) -> int:
        return self.names.index(REST)

    def index(self, group: str, resource: str) -> int:
        try:
            return self.names.index(qualified(resource, group))
        except ValueError:
            return self.rest

    def name(self, index: int) -> str:
        return "(the rest)" if self.names[index] == REST else self.names[index]

    @classmethod
    def from_names(cls, names: Iterable[str]) -> TierTable:
        """A table from a user's list: CRDs and namespaces moved to the front, `*` appended
        when the list does not place it, duplicates refused (they would be ambiguous)."""
        listed: list[str] = []
        for raw in names:
            name = raw.strip().lower()
            if not name:
                continue
            if name in listed:
                raise UsageError(f"tier file: {name!r} is listed twice")
            listed.append(name)
        rest = [name for name in listed if name not in (CRDS, NAMESPACES)]
        if REST not in rest:
            rest.append(REST)
        if len(rest) > _MAX_TIERS:
            raise UsageError(f"tier file: more than {_MAX_TIERS} tiers")
        return cls((CRDS, NAMESPACES, *rest))


def parse_tier_document(doc: Any) -> TierTable:
    """The decoded YAML of a tier file: a list of resource names (`*` for the rest)."""
    if not isinstance(doc, Sequence) or isinstance(doc, str) or not all(isinstance(n, str) for n in doc):
        raise UsageError("a tier file is a YAML list of resource names, e.g. [namespaces, secrets, '*', ingresses]")
    return TierTable.from_names(doc)
