"""The manifest's JSON Schema, loaded from the package data and applied with jsonschema."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator, Mapping
from importlib import resources
from typing import Any

import jsonschema

SCHEMA_PACKAGE = "kubectl_state.schemas"
MANIFEST_SCHEMA = "manifest.schema.json"


def _inline_local_refs(node: Any, defs: Mapping[str, Any]) -> Any:
    # jsonschema resolves every "$ref" through the `referencing` registry on each use, which
    # doubles validation time for a manifest with hundreds of thousands of entries. The
    # schema keeps $defs for people to read; the validator gets them inlined. The schema is
    # not recursive, so this terminates.
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/") and len(node) == 1:
            return _inline_local_refs(defs[ref.removeprefix("#/$defs/")], defs)
        return {key: _inline_local_refs(value, defs) for key, value in node.items() if key != "$defs"}
    if isinstance(node, list):
        return [_inline_local_refs(item, defs) for item in node]
    return node


@functools.cache
def manifest_schema() -> dict[str, Any]:
    """The schema document exactly as shipped."""
    text = resources.files(SCHEMA_PACKAGE).joinpath(MANIFEST_SCHEMA).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    # Not check_schema() here: checking the schema against the metaschema took a quarter of a
    # second of every export, import and verify; tests/unit/test_manifest_schema.py checks it.
    schema = manifest_schema()
    return jsonschema.Draft202012Validator(_inline_local_refs(schema, schema.get("$defs", {})))


_ANNOTATIONS = {"description", "title"}
Predicate = Callable[[Any], bool]


def _compile_property(schema: Mapping[str, Any]) -> Predicate | None:
    """A predicate at least as strict as `schema`, or None if it uses a keyword this does not
    understand. Supports what object entries use: type string/integer, pattern, minLength,
    maxLength, minimum and `not: {enum: [strings]}`."""
    keywords = set(schema) - _ANNOTATIONS
    kind = schema.get("type")
    if kind == "integer":
        if keywords - {"type", "minimum"}:
            return None
        # Stricter than JSON Schema, which also takes 1.0: such entries go to jsonschema.
        low = schema.get("minimum", float("-inf"))
        return lambda v: type(v) is int and v >= low
    if kind != "string" or keywords - {"type", "pattern", "minLength", "maxLength", "not"}:
        return None
    banned = schema.get("not", {"enum": []})
    if set(banned) != {"enum"} or not all(isinstance(b, str) for b in banned["enum"]):
        return None
    pattern = re.compile(schema["pattern"]) if "pattern" in schema else None
    shortest, longest = schema.get("minLength", 0), schema.get("maxLength", float("inf"))
    excluded = frozenset(banned["enum"])
    return lambda v: (
        type(v) is str
        and shortest <= len(v) <= longest
        and (pattern is None or pattern.search(v) is not None)
        and v not in excluded
    )


def _compile_object(schema: Mapping[str, Any]) -> Predicate | None:
    if set(schema) - _ANNOTATIONS != {"type", "additionalProperties", "required", "properties"}:
        return None
    if schema["type"] != "object" or schema["additionalProperties"] is not False:
        return None
    properties = {name: _compile_property(sub) for name, sub in schema["properties"].items()}
    if any(check is None for check in properties.values()):
        return None
    required = frozenset(schema["required"])

    def check(item: Any) -> bool:
        if type(item) is not dict or not required <= item.keys():
            return False
        for key, value in item.items():
            prop = properties.get(key)
            if prop is None or not prop(value):
                return False
        return True

    return check


@functools.cache
def _object_entries() -> tuple[Predicate, jsonschema.Draft202012Validator] | None:
    # Validating hundreds of thousands of object entries with jsonschema costs ~90 us each:
    # half a minute on each side of a large export. The entry schema is simple enough to
    # compile into one predicate; entries it accepts are valid, and anything it does not
    # accept is validated by jsonschema itself, so messages stay jsonschema's own.
    objects = _validator().schema["properties"]["objects"]
    if set(objects) - _ANNOTATIONS != {"type", "items"} or objects["type"] != "array":
        return None
    check = _compile_object(objects["items"])
    return None if check is None else (check, jsonschema.Draft202012Validator(objects["items"]))


def schema_errors(document: Any) -> Iterator[str]:
    """One line per violation, each naming where in the manifest it is ("objects[3].sha256")."""
    fast = _object_entries()
    items = document.get("objects") if isinstance(document, dict) else None
    found: list[tuple[list[Any], str]] = []
    if fast is None or not isinstance(items, list):
        found.extend((list(e.absolute_path), e.message) for e in _validator().iter_errors(document))
    else:
        check, item_validator = fast
        rest = {**document, "objects": []}
        found.extend((list(e.absolute_path), e.message) for e in _validator().iter_errors(rest))
        for index, item in enumerate(items):
            if not check(item):
                found.extend(
                    (["objects", index, *e.absolute_path], e.message) for e in item_validator.iter_errors(item)
                )
    for path, message in sorted(
        found, key=lambda one: [(0, p, "") if isinstance(p, int) else (1, 0, p) for p in one[0]]
    ):
        yield f"{_json_path(path)}: {_short(message)}"


def _json_path(path: Any) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _short(message: str, limit: int = 200) -> str:
    # jsonschema quotes the offending value whole; a manifest value can be huge.
    return message if len(message) <= limit else message[: limit - 3] + "..."
