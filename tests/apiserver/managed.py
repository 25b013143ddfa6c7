"""managedFields bookkeeping and server-side apply.

Field sets are kept as sets of paths; a path is a tuple of FieldsV1 path elements
(`f:spec`, `k:{"name":"web"}`, `v:"a"`, `.`), which is how kube-apiserver names fields in
`managedFields[].fieldsV1`. Lists of objects with a merge key are associative (one path per
element), lists of scalars are sets, every other list is atomic (a single leaf).

Simplifications against the real structured-merge-diff, which are enough for the tests and
for kubectl: merge keys come from field names (patch.MERGE_KEYS) rather than from schemas,
and maps are always granular.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from typing import Any

from .patch import MERGE_KEYS
from .status import ApiStatusError

Path = tuple[str, ...]
_MISSING = object()

#: metadata fields the server owns; never part of anyone's field set.
_SERVER_METADATA = frozenset(
    {
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "managedFields",
        "selfLink",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generateName",
    }
)


def _list_key(field: str, items: list[Any]) -> str | None:
    key = MERGE_KEYS.get(field)
    if key is None or key == "":
        return None
    if not all(isinstance(i, dict) for i in items):
        return None
    if field == "ports" and items and "containerPort" not in items[0] and "port" in items[0]:
        key = "port"
    if not all(key in i for i in items):
        return None
    return key


def _item_element(key: str, item: dict[str, Any]) -> str:
    return "k:" + json.dumps({key: item[key]}, separators=(",", ":"))


def field_paths(obj: Any, *, status: bool = True) -> set[Path]:
    """Every leaf path of an object (status left out when it belongs to a subresource)."""
    paths: set[Path] = set()

    def walk(value: Any, path: Path, field: str) -> None:
        if isinstance(value, dict) and value:
            for k, v in value.items():
                walk(v, (*path, f"f:{k}"), k)
        elif isinstance(value, list) and value:
            key = _list_key(field, value)
            if key is not None:
                for item in value:
                    element = (*path, _item_element(key, item))
                    paths.add((*element, "."))
                    for k, v in item.items():
                        walk(v, (*element, f"f:{k}"), k)
            elif all(not isinstance(i, (dict, list)) for i in value):
                for item in value:
                    paths.add((*path, "v:" + json.dumps(item, separators=(",", ":"))))
            else:
                paths.add(path)
        else:
            paths.add(path)

    for k, v in obj.items():
        if k in ("apiVersion", "kind") or (k == "status" and not status):
            continue
        if k == "metadata" and isinstance(v, dict):
            for mk, mv in v.items():
                if mk not in _SERVER_METADATA:
                    walk(mv, ("f:metadata", f"f:{mk}"), mk)
            continue
        walk(v, (f"f:{k}",), k)
    return paths


def status_paths(obj: dict[str, Any]) -> set[Path]:
    return {p for p in field_paths({"status": obj.get("status")}) if obj.get("status") is not None}


def to_fields_v1(paths: Iterable[Path]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path in sorted(paths):
        node = tree
        for element in path:
            node = node.setdefault(element, {})
    return tree


def from_fields_v1(tree: dict[str, Any], prefix: Path = ()) -> set[Path]:
    paths: set[Path] = set()
    for element, child in tree.items():
        path = (*prefix, element)
        if child:
            paths |= from_fields_v1(child, path)
        else:
            paths.add(path)
    return paths


def value_at(obj: Any, path: Path) -> Any:
    current = obj
    for element in path:
        if element == ".":
            return current
        kind, _, rest = element.partition(":")
        if kind == "f":
            if not isinstance(current, dict) or rest not in current:
                return _MISSING
            current = current[rest]
        elif kind == "k":
            wanted = json.loads(rest)
            if not isinstance(current, list):
                return _MISSING
            current = next(
                (i for i in current if isinstance(i, dict) and all(i.get(k) == v for k, v in wanted.items())), _MISSING
            )
            if current is _MISSING:
                return _MISSING
        elif kind == "v":
            value = json.loads(rest)
            return value if isinstance(current, list) and value in current else _MISSING
    return current


def remove_path(obj: Any, path: Path) -> None:
    """Remove the field at `path` from `obj` in place (no-op when absent)."""
    if not path:
        return
    if path[-1] == ".":
        path = path[:-1]
    parent = value_at(obj, path[:-1]) if len(path) > 1 else obj
    if parent is _MISSING:
        return
    kind, _, rest = path[-1].partition(":")
    if kind == "f" and isinstance(parent, dict):
        parent.pop(rest, None)
    elif kind == "k" and isinstance(parent, list):
        wanted = json.loads(rest)
        parent[:] = [i for i in parent if not (isinstance(i, dict) and all(i.get(k) == v for k, v in wanted.items()))]
    elif kind == "v" and isinstance(parent, list):
        value = json.loads(rest)
        parent[:] = [i for i in parent if i != value]


def apply_merge(live: Any, config: Any, field: str = "") -> Any:
    """Merge an applied configuration into the live object (associative lists by key)."""
    if isinstance(config, dict) and isinstance(live, dict):
        result = copy.deepcopy(live)
        for k, v in config.items():
            result[k] = apply_merge(live.get(k), v, k)
        return result
    if isinstance(config, list) and isinstance(live, list):
        key = _list_key(field, config)
        if key is not None and _list_key(field, live) == key:
            merged = []
            by_key = {json.dumps(i[key]): i for i in live}
            config_keys = set()
            for item in config:
                k = json.dumps(item[key])
                config_keys.add(k)
                merged.append(apply_merge(by_key.get(k), item, field))
            merged.extend(copy.deepcopy(i) for i in live if json.dumps(i[key]) not in config_keys)
            return merged
        if all(not isinstance(i, (dict, list)) for i in config + live) and field in ("finalizers",):
            return list(config) + [i for i in live if i not in config]
    return copy.deepcopy(config)


def _entries(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return list((obj.get("metadata") or {}).get("managedFields") or [])


def _entry_paths(entry: dict[str, Any]) -> set[Path]:
    return from_fields_v1(entry.get("fieldsV1") or {})


def _set_entries(obj: dict[str, Any], entries: list[dict[str, Any]]) -> None:
    kept = [e for e in entries if e.get("fieldsV1")]
    meta = obj.setdefault("metadata", {})
    if kept:
        meta["managedFields"] = kept
    else:
        meta.pop("managedFields", None)


def _upsert(
    entries: list[dict[str, Any]],
    manager: str,
    operation: str,
    *,
    api_version: str,
    now: str,
    paths: set[Path],
    subresource: str,
) -> None:
    for entry in entries:
        if (
            entry.get("manager") == manager
            and entry.get("operation") == operation
            and entry.get("subresource", "") == subresource
        ):
            entry.update(apiVersion=api_version, time=now, fieldsV1=to_fields_v1(paths))
            return
    entry = {
        "manager": manager,
        "operation": operation,
        "apiVersion": api_version,
        "time": now,
        "fieldsType": "FieldsV1",
        "fieldsV1": to_fields_v1(paths),
    }
    if subresource:
        entry["subresource"] = subresource
    entries.append(entry)


def changed_paths(old: dict[str, Any] | None, new: dict[str, Any], *, status: bool) -> set[Path]:
    new_paths = field_paths(new, status=status)
    if old is None:
        return new_paths
    return {p for p in new_paths if value_at(old, p) != value_at(new, p)}


def record_update(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    manager: str,
    api_version: str,
    now: str,
    *,
    subresource: str = "",
    include_status: bool = True,
) -> None:
    """Give `manager` (operation Update) the fields this write changed; others lose them."""
    entries = _entries(old) if old is not None else []
    entries = [copy.deepcopy(e) for e in entries]
    changed = changed_paths(old, new, status=include_status)
    present = field_paths(new)
    for entry in entries:
        paths = _entry_paths(entry)
        # Fields that no longer exist are nobody's; fields just changed are the writer's.
        kept = {p for p in paths if p in present or value_at(new, p) is not _MISSING} - changed
        if kept != paths:
            entry["fieldsV1"] = to_fields_v1(kept)
    mine = next(
        (
            e
            for e in entries
            if e.get("manager") == manager
            and e.get("operation") == "Update"
            and e.get("subresource", "") == subresource
        ),
        None,
    )
    owned = (_entry_paths(mine) if mine else set()) | changed
    owned = {p for p in owned if value_at(new, p) is not _MISSING}
    if changed or mine:
        _upsert(entries, manager, "Update", api_version=api_version, now=now, paths=owned, subresource=subresource)
    _set_entries(new, entries)


def server_side_apply(
    live: dict[str, Any] | None,
    config: dict[str, Any],
    manager: str,
    api_version: str,
    now: str,
    *,
    force: bool,
    subresource: str = "",
    include_status: bool = True,
) -> dict[str, Any]:
    """The object after `manager` applies `config`; raises 409 Conflict on foreign fields."""
    config_paths = field_paths(config, status=include_status)
    if subresource == "status":
        config_paths = {p for p in config_paths if p[:1] == ("f:status",)}
    base = copy.deepcopy(live) if live is not None else {}
    entries = [copy.deepcopy(e) for e in _entries(base)]
    conflicts: list[tuple[str, Path]] = []
    for entry in entries:
        if entry.get("manager") == manager and entry.get("operation") == "Apply":
            continue
        if entry.get("manager") == "kubectl-client-side-apply" and manager == "kubectl":
            # kubectl's documented client-side -> server-side upgrade takes over these fields.
            continue
        for path in _entry_paths(entry) & config_paths:
            if path[-1] != "." and value_at(base, path) != value_at(config, path):
                conflicts.append((entry["manager"], path))
    if conflicts and not force:
        causes = [
            {"reason": "FieldManagerConflict", "message": f'conflict with "{m}": {_dotted(p)}', "field": _dotted(p)}
            for m, p in conflicts
        ]
        text = "; ".join(c["message"] for c in causes)
        raise ApiStatusError(
            409,
            "Conflict",
            f"Apply failed with {len(conflicts)} conflict{'s' if len(conflicts) > 1 else ''}: {text}",
            details={"causes": causes},
        )
    taken = {p for _, p in conflicts}
    previous: set[Path] = set()
    for entry in entries:
        paths = _entry_paths(entry)
        if (
            entry.get("manager") == manager
            and entry.get("operation") == "Apply"
            and entry.get("subresource", "") == subresource
        ):
            previous = paths
        elif taken & paths:
            entry["fieldsV1"] = to_fields_v1(paths - taken)
    others: set[Path] = set()
    for entry in entries:
        if not (entry.get("manager") == manager and entry.get("operation") == "Apply"):
            others |= _entry_paths(entry)
    merged: dict[str, Any] = apply_merge(base, {k: v for k, v in config.items() if k != "metadata"})
    meta_config = {k: v for k, v in (config.get("metadata") or {}).items() if k not in _SERVER_METADATA}
    merged.setdefault("metadata", {})
    merged["metadata"] = apply_merge(merged["metadata"], meta_config, "metadata")
    for identity in ("name", "namespace", "generateName"):
        if identity in (config.get("metadata") or {}) and identity not in merged["metadata"]:
            merged["metadata"][identity] = config["metadata"][identity]
    # Fields this manager applied before, dropped from its configuration now, owned by
    # nobody else: the apply removes them (that is how apply deletes a field).
    for path in sorted(previous - config_paths - others, key=len, reverse=True):
        remove_path(merged, path)
    _upsert(entries, manager, "Apply", api_version=api_version, now=now, paths=config_paths, subresource=subresource)
    _set_entries(merged, entries)
    return merged


def _dotted(path: Path) -> str:
    parts = []
    for element in path:
        kind, _, rest = element.partition(":")
        if kind == "f":
            parts.append("." + rest)
        elif kind == "k":
            parts.append("[" + ",".join(f"{k}={json.dumps(v)}" for k, v in json.loads(rest).items()) + "]")
        elif kind == "v":
            parts.append(f"[{rest}]")
    return "".join(parts)
