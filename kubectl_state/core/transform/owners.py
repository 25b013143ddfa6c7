"""Owner references across an import: relink them to new uids, and order owners first.

An owner reference names its owner by uid, and a re-created owner gets a new uid. The
garbage collector treats a reference whose uid does not match the live owner as an owner
that is gone, and deletes a dependent once all its owners are gone. So every reference must
either be pointed at the new uid (the owner was imported first, as clusterctl move does) or
be removed; a stale one gets the restored object deleted shortly after it was created.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from kubectl_state.core.errors import InvalidInputError
from kubectl_state.core.transform._json import JsonObject, child, child_list, copy_json

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class MissingOwner:
    """An owner reference whose old uid has no new uid: the owner was not imported."""

    api_version: str
    kind: str
    name: str
    uid: str
    controller: bool


def relink_owner_references(
    obj: Mapping[str, Any],
    uid_map: Mapping[str, str],
    *,
    drop_missing: bool = True,
) -> tuple[JsonObject, list[MissingOwner]]:
    """Return a copy of `obj` whose owner references carry new uids, and the owners not found.

    `uid_map` maps old uids to new ones; the caller fills it with every owner it created or
    found already present in the target (looked up by kind, namespace and name).

    With `drop_missing` (the default) a reference to a missing owner is removed, leaving the
    object alive without that owner; kept, it would make the garbage collector delete the
    object (see the module docstring). Keep them only to inspect or to fix them up later.
    `ownerReferences` itself is removed when nothing is left in it.
    """
    out: JsonObject = copy_json(obj)
    metadata = child(out, "metadata")
    refs = child_list(metadata, "ownerReferences")
    if metadata is None or refs is None:
        return out, []
    missing: list[MissingOwner] = []
    kept: list[Any] = []
    for ref in refs:
        if not isinstance(ref, dict):
            kept.append(ref)
            continue
        old_uid = ref.get("uid")
        new_uid = uid_map.get(old_uid) if isinstance(old_uid, str) else None
        if new_uid is not None:
            ref["uid"] = new_uid
            kept.append(ref)
            continue
        missing.append(
            MissingOwner(
                api_version=str(ref.get("apiVersion") or ""),
                kind=str(ref.get("kind") or ""),
                name=str(ref.get("name") or ""),
                uid=str(old_uid or ""),
                controller=ref.get("controller") is True,
            )
        )
        if not drop_missing:
            kept.append(ref)
    if kept:
        metadata["ownerReferences"] = kept
    else:
        del metadata["ownerReferences"]
    return out, missing


def owner_levels(objects: Iterable[tuple[K, Mapping[str, Any], str]]) -> list[list[K]]:
    """Group objects into levels: each object's owners (among `objects`) are in earlier levels.

    `objects` holds `(key, object, old_uid)`; the old uid is passed apart because cleaning
    removes it from the object. Objects in one level may be created in parallel. Owners
    outside `objects` add no constraint. Order inside a level follows the input.

    Raises InvalidInputError naming the objects when owner references form a cycle (the API
    server allows creating one; nothing can be imported owners-first then), or when two
    objects claim the same old uid (an archive that cannot be trusted).
    """
    entries = list(objects)
    index_of_uid: dict[str, int] = {}
    for index, (key, _obj, uid) in enumerate(entries):
        if not uid:
            continue  # nothing can reference an object whose uid was not recorded
        if uid in index_of_uid:
            other = entries[index_of_uid[uid]][0]
            raise InvalidInputError(f"Two objects claim the same uid {uid}: {other} and {key}.")
        index_of_uid[uid] = index

    owners: list[list[int]] = []
    dependents: list[list[int]] = [[] for _ in entries]
    for index, (_key, obj, _own_uid) in enumerate(entries):
        found: list[int] = []
        for ref in child_list(child(obj, "metadata"), "ownerReferences") or []:
            ref_uid = ref.get("uid") if isinstance(ref, Mapping) else None
            owner = index_of_uid.get(ref_uid) if isinstance(ref_uid, str) else None
            if owner is not None and owner not in found:
                found.append(owner)
                dependents[owner].append(index)
        owners.append(found)

    # Kahn's algorithm, one level at a time.
    waiting = [len(found) for found in owners]
    level = [index for index, count in enumerate(waiting) if count == 0]
    levels: list[list[K]] = []
    placed = 0
    while level:
        levels.append([entries[index][0] for index in level])
        placed += len(level)
        following: list[int] = []
        for index in level:
            for dependent in dependents[index]:
                waiting[dependent] -= 1
                if waiting[dependent] == 0:
                    following.append(dependent)
        level = sorted(following)
    if placed < len(entries):
        cycle = _find_cycle(owners, [count > 0 for count in waiting])
        path = " -> ".join(str(entries[index][0]) for index in cycle)
        raise InvalidInputError(f"Owner references form a cycle (each owns the next): {path}.")
    return levels


def owner_graph(objects: Iterable[tuple[K, Mapping[str, Any], str]]) -> list[K]:
    """The keys of `objects` in an order where owners come before their dependents.

    See `owner_levels` for the arguments and errors; this is its levels one after another.
    """
    return [key for level in owner_levels(objects) for key in level]


def _find_cycle(owners: list[list[int]], unplaced: list[bool]) -> list[int]:
    """A cycle among the unplaced objects, owner first, closed (first == last).

    Every unplaced object has an unplaced owner (else it would have been placed), so walking
    owner edges from any of them must come back to an object already seen.
    """
    start = unplaced.index(True)
    seen: dict[int, int] = {}
    walk: list[int] = []
    node = start
    while node not in seen:
        seen[node] = len(walk)
        walk.append(node)
        node = next(owner for owner in owners[node] if unplaced[owner])
    # walk goes dependent -> owner; reverse it so the message reads owner -> dependent.
    cycle = walk[seen[node] :]
    cycle.reverse()
    return [*cycle, cycle[0]]
