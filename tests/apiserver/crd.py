"""CustomResourceDefinitions: what they add to discovery, their status, and validating
custom resources against their openAPIV3Schema.

The server writes a CRD's `Established` and `NamesAccepted` conditions in the same write
that stores the CRD, standing in for kube-apiserver's naming and establishing controllers.
Every replica derives its custom resources from the CRDs in etcd (see handlers.py), so
no replica needs to hear from another.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import jsonschema

from .registry import ResourceInfo
from .status import ApiStatusError, bad_request

CRD_GROUP = "apiextensions.k8s.io"
_VERBS = ("delete", "deletecollection", "get", "list", "patch", "create", "update", "watch")


def resource_infos(crd: dict[str, Any]) -> list[ResourceInfo]:
    """One ResourceInfo per served version of an established CRD."""
    if (crd.get("metadata") or {}).get("deletionTimestamp"):
        return []
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    infos = []
    for version in spec.get("versions") or []:
        if not version.get("served", True):
            continue
        subresources = frozenset((version.get("subresources") or {}).keys())
        infos.append(
            ResourceInfo(
                group=spec.get("group", ""),
                version=version["name"],
                resource=names.get("plural", ""),
                kind=names.get("kind", ""),
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                verbs=_VERBS,
                singular=names.get("singular") or names.get("kind", "").lower(),
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                subresources=subresources,
                crd_name=crd["metadata"]["name"],
            )
        )
    return infos


def validate_crd(crd: dict[str, Any]) -> list[dict[str, str]]:
    """The checks kube-apiserver makes that tests and users run into first."""
    causes = []
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group = spec.get("group") or ""
    plural = names.get("plural") or ""
    name = (crd.get("metadata") or {}).get("name", "")
    if not group:
        causes.append({"reason": "FieldValueRequired", "message": "Required value", "field": "spec.group"})
    if not plural:
        causes.append({"reason": "FieldValueRequired", "message": "Required value", "field": "spec.names.plural"})
    if not names.get("kind"):
        causes.append({"reason": "FieldValueRequired", "message": "Required value", "field": "spec.names.kind"})
    if group and plural and name != f"{plural}.{group}":
        causes.append(
            {
                "reason": "FieldValueInvalid",
                "field": "metadata.name",
                "message": f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group',
            }
        )
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        causes.append(
            {
                "reason": "FieldValueNotSupported",
                "field": "spec.scope",
                "message": f'Unsupported value: "{spec.get("scope")}": supported values: "Cluster", "Namespaced"',
            }
        )
    versions = spec.get("versions") or []
    if not versions:
        causes.append({"reason": "FieldValueRequired", "message": "Required value", "field": "spec.versions"})
    elif sum(1 for v in versions if v.get("storage")) != 1:
        causes.append(
            {
                "reason": "FieldValueInvalid",
                "field": "spec.versions",
                "message": "Invalid value: must have exactly one version marked as storage version",
            }
        )
    return causes


def with_status(crd: dict[str, Any], now: str) -> dict[str, Any]:
    """The CRD with the status its controllers would converge to."""
    crd = copy.deepcopy(crd)
    spec = crd.get("spec") or {}
    old = crd.get("status") or {}
    previous = {c.get("type"): c for c in old.get("conditions") or []}

    def condition(kind: str, reason: str, message: str) -> dict[str, Any]:
        before = previous.get(kind)
        since = before["lastTransitionTime"] if before and before.get("status") == "True" else now
        return {"type": kind, "status": "True", "lastTransitionTime": since, "reason": reason, "message": message}

    stored = list(old.get("storedVersions") or [])
    for version in spec.get("versions") or []:
        if version.get("storage") and version["name"] not in stored:
            stored.append(version["name"])
    crd["status"] = {
        "conditions": [
            condition("NamesAccepted", "NoConflicts", "no conflicts found"),
            condition("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        ],
        "acceptedNames": copy.deepcopy(spec.get("names") or {}),
        "storedVersions": stored,
    }
    return crd


def version_schema(crd: dict[str, Any], version: str) -> dict[str, Any] | None:
    for entry in (crd.get("spec") or {}).get("versions") or []:
        if entry.get("name") == version:
            return ((entry.get("schema") or {}).get("openAPIV3Schema")) or None
    return None


def selectable_fields(crd: dict[str, Any], version: str) -> tuple[str, ...]:
    for entry in (crd.get("spec") or {}).get("versions") or []:
        if entry.get("name") == version:
            return tuple(f["jsonPath"].lstrip(".") for f in entry.get("selectableFields") or [])
    return ()


def _to_json_schema(schema: Any) -> Any:
    """OpenAPI v3 (structural schema dialect) -> JSON Schema for the `jsonschema` package."""
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ("properties", "patternProperties", "definitions"):
            out[key] = {k: _to_json_schema(v) for k, v in value.items()}
        elif key in ("items", "additionalProperties", "not"):
            out[key] = _to_json_schema(value) if isinstance(value, dict) else value
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [_to_json_schema(v) for v in value]
        elif key.startswith("x-kubernetes-") or key in ("nullable", "format", "example", "externalDocs"):
            continue
        else:
            out[key] = value
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if schema.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    # Formats k8s validates; others (int32, byte, ...) are only hints.
    if schema.get("format") in ("date-time", "uri", "email", "ipv4", "ipv6", "uuid"):
        out["format"] = schema["format"]
    return out


def _field_path(path: list[Any]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _cause(error: jsonschema.ValidationError) -> dict[str, str]:
    field = _field_path(list(error.absolute_path))
    validator = error.validator
    if validator == "required":
        missing = re.search(r"'([^']+)' is a required property", error.message)
        name = missing.group(1) if missing else "?"
        full = f"{field}.{name}" if field else name
        return {"reason": "FieldValueRequired", "message": "Required value", "field": full}
    shown = (
        error.instance
        if isinstance(error.instance, (int, float, bool)) or error.instance is None
        else f'"{error.instance}"'
        if isinstance(error.instance, str)
        else str(type(error.instance).__name__)
    )
    if validator == "type":
        expected = (
            error.validator_value if isinstance(error.validator_value, str) else " or ".join(error.validator_value)
        )
        message = f"Invalid value: {shown!s}: {field or 'body'} in body must be of type {expected}: {shown!s}"
        return {"reason": "FieldValueTypeInvalid", "message": message, "field": field}
    if validator == "enum":
        allowed = ", ".join(f'"{v}"' for v in error.validator_value)
        return {
            "reason": "FieldValueNotSupported",
            "field": field,
            "message": f"Unsupported value: {shown}: supported values: {allowed}",
        }
    return {"reason": "FieldValueInvalid", "field": field, "message": f"Invalid value: {shown}: {error.message}"}


def validate(obj: dict[str, Any], schema: dict[str, Any] | None) -> list[dict[str, str]]:
    """Causes for a 422 Invalid, checking everything but metadata (the server checks that)."""
    if not schema:
        return []
    body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
    js = _to_json_schema(schema)
    props = dict(js.get("properties") or {})
    for key in ("apiVersion", "kind", "metadata"):
        props.pop(key, None)
    js["properties"] = props
    js["required"] = [r for r in js.get("required") or [] if r not in ("apiVersion", "kind", "metadata")]
    validator = jsonschema.Draft202012Validator(js, format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(body), key=lambda e: list(map(str, e.absolute_path)))
    return [_cause(e) for e in errors]


def prune(value: Any, schema: dict[str, Any] | None, path: str, unknown: list[str]) -> Any:
    """Drop fields the structural schema does not declare (recording each), as kube-apiserver
    prunes them; `x-kubernetes-preserve-unknown-fields` keeps them."""
    if not isinstance(schema, dict):
        return value
    if isinstance(value, dict):
        props = schema.get("properties")
        additional = schema.get("additionalProperties")
        preserve = schema.get("x-kubernetes-preserve-unknown-fields")
        if props is None and additional is None and preserve:
            return value
        if schema.get("x-kubernetes-embedded-resource") and props is None:
            return value
        result = {}
        for key, child in value.items():
            child_path = f"{path}.{key}" if path else key
            if props is not None and key in props:
                result[key] = prune(child, props[key], child_path, unknown)
            elif isinstance(additional, dict):
                result[key] = prune(child, additional, child_path, unknown)
            elif (
                additional is True
                or preserve
                or (path == "" and key in ("apiVersion", "kind", "metadata"))
                or (props is None and additional is None and schema.get("type") != "object")
            ):
                result[key] = child
            else:
                unknown.append(child_path)
        return result
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [prune(v, schema["items"], f"{path}[{i}]", unknown) for i, v in enumerate(value)]
    return value


def prune_custom_resource(
    obj: dict[str, Any], schema: dict[str, Any] | None, field_validation: str
) -> tuple[dict[str, Any], list[str]]:
    """Apply fieldValidation (Strict: 400 BadRequest; Warn: warnings; Ignore: silent)."""
    if not schema:
        return obj, []
    unknown: list[str] = []
    pruned = prune(obj, schema, "", unknown)
    if unknown and field_validation == "Strict":
        raise bad_request("strict decoding error: " + ", ".join(f'unknown field "{u}"' for u in unknown))
    warnings = [f'unknown field "{u}"' for u in unknown] if field_validation == "Warn" else []
    return pruned, warnings


def crd_name_for(group: str, plural: str) -> str:
    return f"{plural}.{group}"


def require_structural(crd: dict[str, Any]) -> None:
    """Refuse a schema jsonschema cannot even compile, so CR writes never hit a 500."""
    for version in (crd.get("spec") or {}).get("versions") or []:
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        if schema:
            try:
                jsonschema.Draft202012Validator.check_schema(_to_json_schema(schema))
            except jsonschema.SchemaError as exc:
                raise ApiStatusError(
                    422,
                    "Invalid",
                    f'CustomResourceDefinition.apiextensions.k8s.io "{crd["metadata"].get("name")}" is invalid: '
                    f"spec.versions[{version.get('name')}].schema.openAPIV3Schema: {exc.message}",
                ) from exc
