"""The three PATCH bodies that are not server-side apply.

- JSON merge patch (RFC 7386): maps merge, `null` deletes, lists are replaced.
- JSON patch (RFC 6902): a list of operations on JSON pointers.
- Strategic merge patch: a merge patch where lists of objects that Kubernetes declares
  with a merge key (containers by `name`, ports by `containerPort`, ...) are merged element
  by element, plus the `$patch`, `$retainKeys`, `$deleteFromPrimitiveList` and
  `$setElementOrder` directives kubectl's client-side apply sends. Without the Go type
  information, merge keys come from the field name, which covers the built-in kinds.
"""

from __future__ import annotations

import copy
from typing import Any

from .status import ApiStatusError, bad_request

#: Field name -> merge key for lists merged by key in strategic merge patches (from the
#: `patchMergeKey` struct tags of k8s.io/api). Fields not listed are replaced as a whole.
MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "env": "name",
    "imagePullSecrets": "name",
    "ports": "containerPort",
    "hostAliases": "ip",
    "conditions": "type",
    "finalizers": "",  # a set of strings: merged, not replaced
    "ownerReferences": "uid",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
    "schedulingGates": "name",
}


def json_merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = json_merge_patch(result.get(key), value)
    return result


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise bad_request(
            f'the server rejected our request due to an error in our request: invalid JSON pointer "{path}"'
        )
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc: Any, parts: list[str]) -> Any:
    for part in parts:
        if isinstance(doc, dict):
            if part not in doc:
                raise bad_request(
                    f"the server rejected our request due to an error in our request: missing path /{'/'.join(parts)}"
                )
            doc = doc[part]
        elif isinstance(doc, list):
            try:
                doc = doc[int(part)]
            except (ValueError, IndexError) as exc:
                raise bad_request(
                    f"the server rejected our request due to an error in our request: bad index {part}"
                ) from exc
        else:
            raise bad_request(f"the server rejected our request due to an error in our request: cannot traverse {part}")
    return doc


def _add(doc: Any, parts: list[str], value: Any) -> Any:
    if not parts:
        return value
    parent = _walk(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        else:
            index = int(last)
            if index > len(parent):
                raise bad_request("the server rejected our request due to an error in our request: index out of range")
            parent.insert(index, value)
    else:
        raise bad_request("the server rejected our request due to an error in our request: cannot add to a scalar")
    return doc


def _remove(doc: Any, parts: list[str]) -> tuple[Any, Any]:
    parent = _walk(doc, parts[:-1])
    last = parts[-1]
    try:
        if isinstance(parent, dict):
            return doc, parent.pop(last)
        if isinstance(parent, list):
            return doc, parent.pop(int(last))
    except (KeyError, ValueError, IndexError):
        pass
    raise bad_request(
        f"the server rejected our request due to an error in our request: unable to remove nonexistent key: {last}"
    )


def json_patch(target: Any, operations: Any) -> Any:
    if not isinstance(operations, list):
        raise bad_request(
            "the server rejected our request due to an error in our request: a JSON patch is a list of operations"
        )
    doc = copy.deepcopy(target)
    for op in operations:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise bad_request(
                "the server rejected our request due to an error in our request: malformed JSON patch operation"
            )
        kind, parts = op["op"], _pointer(op["path"])
        if kind == "add":
            doc = _add(doc, parts, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            doc, _ = _remove(doc, parts)
        elif kind == "replace":
            _walk(doc, parts)  # must exist
            if parts:
                doc, _ = _remove(doc, parts)
            doc = _add(doc, parts, copy.deepcopy(op.get("value")))
        elif kind in ("move", "copy"):
            source = _pointer(op.get("from", ""))
            if kind == "move":
                doc, value = _remove(doc, source)
            else:
                value = copy.deepcopy(_walk(doc, source))
            doc = _add(doc, parts, value)
        elif kind == "test":
            if _walk(doc, parts) != op.get("value"):
                raise ApiStatusError(
                    422,
                    "Invalid",
                    f"the server rejected our request due to an error in our request: "
                    f"testing value {op['path']} failed",
                )
        else:
            raise bad_request(
                f"the server rejected our request due to an error in our request: unknown JSON patch operation {kind!r}"
            )
    return doc


def _merge_key(field: str, items: list[Any]) -> str | None:
    key = MERGE_KEYS.get(field)
    if key is None:
        return None
    if key == "":
        return ""
    if (
        field == "ports"
        and items
        and isinstance(items[0], dict)
        and "containerPort" not in items[0]
        and "port" in items[0]
    ):
        return "port"  # Service ports merge by port, container ports by containerPort
    return key


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key.startswith("$setElementOrder/") or key in ("$retainKeys", "$patch"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(result.get(field), list):
                result[field] = [v for v in result[field] if v not in value]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            merged = strategic_merge_patch(result.get(key), value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list):
            result[key] = _merge_list(key, result.get(key), value)
        else:
            result[key] = copy.deepcopy(value)
    if isinstance(retain, list):
        for key in list(result):
            if key not in retain and key not in patch:
                result.pop(key)
    return result


def _merge_list(field: str, current: Any, patch: list[Any]) -> list[Any]:
    key = _merge_key(field, patch or (current if isinstance(current, list) else []))
    if key is None or not isinstance(current, list):
        return [strip_directives(v) for v in patch if not (isinstance(v, dict) and v.get("$patch") == "delete")]
    if key == "":
        merged = list(current)
        merged.extend(v for v in patch if v not in merged)
        return merged
    if any(isinstance(v, dict) and v.get("$patch") == "replace" for v in patch):
        return [strip_directives(v) for v in patch if not (isinstance(v, dict) and "$patch" in v)]
    result = copy.deepcopy(current)
    for item in patch:
        if not isinstance(item, dict):
            result.append(copy.deepcopy(item))
            continue
        index = next(
            (i for i, cur in enumerate(result) if isinstance(cur, dict) and cur.get(key) == item.get(key)), None
        )
        if item.get("$patch") == "delete":
            if index is not None:
                result.pop(index)
        elif index is None:
            result.append(strip_directives(item))
        else:
            result[index] = strategic_merge_patch(result[index], item)
    return result


def strip_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: strip_directives(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [strip_directives(v) for v in value]
    return copy.deepcopy(value)
