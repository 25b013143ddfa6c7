"""Small helpers for objects as the Kubernetes API returns them: nested JSON dicts and lists.

Every transformation copies its input first and then edits the copy, so these helpers
mutate freely; they only ever see the copy.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

#: An object (or any nested map) as decoded from the API's JSON.
JsonObject = dict[str, Any]


def copy_json(value: Any) -> Any:
    """Deep-copy decoded JSON.

    Much cheaper than `copy.deepcopy` on dicts, lists and scalars, which is all API objects
    hold; anything else (a caller passing non-JSON data) still gets a real deep copy so the
    "never mutate the input" promise holds whatever comes in.
    """
    if isinstance(value, Mapping):
        return {key: copy_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [copy_json(item) for item in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return copy.deepcopy(value)


def child(parent: Any, key: str) -> JsonObject | None:
    """`parent[key]` when both are maps, else None: API objects may omit any optional field."""
    if not isinstance(parent, Mapping):
        return None
    value = parent.get(key)
    return value if isinstance(value, dict) else None


def child_list(parent: Any, key: str) -> list[Any] | None:
    """`parent[key]` when `parent` is a map and the value a list, else None."""
    if not isinstance(parent, Mapping):
        return None
    value = parent.get(key)
    return value if isinstance(value, list) else None


def pop_keys(target: JsonObject, keys: tuple[str, ...] | frozenset[str]) -> bool:
    """Remove `keys` from `target`; True when anything was removed."""
    removed = False
    for key in keys:
        if key in target:
            del target[key]
            removed = True
    return removed


def drop_if_empty(parent: JsonObject, key: str) -> None:
    """Remove `parent[key]` when it is an empty map or list, so cleaning leaves no `{}` behind."""
    value = parent.get(key)
    if isinstance(value, dict | list) and not value:
        del parent[key]


def api_group(api_version: Any) -> str:
    """The group of an `apiVersion` ("apps/v1" -> "apps"; "v1" -> "", the core group)."""
    if not isinstance(api_version, str) or "/" not in api_version:
        return ""
    return api_version.split("/", 1)[0]
