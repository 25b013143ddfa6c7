"""The OpenAPI v3 documents kubectl reads before it writes.

kubectl 1.32 validates on the server (`fieldValidation=Strict`) when, for the kind it
writes, the group version's document has a PATCH operation tagged with
`x-kubernetes-group-version-kind` and a `fieldValidation` query parameter; then it needs
no schemas. So these documents describe paths, operations and parameters, and leave
`components.schemas` empty (kubectl then computes strategic merge patches from its
compiled-in types, as it does for any server without schemas).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .registry import ResourceInfo


def _param(name: str, where: str = "query", description: str = "") -> dict[str, Any]:
    param: dict[str, Any] = {"name": name, "in": where, "schema": {"type": "string", "uniqueItems": True}}
    if description:
        param["description"] = description
    if where == "path":
        param["required"] = True
    return param


_WRITE_PARAMS = [
    _param("dryRun", description="When present, indicates that modifications should not be persisted."),
    _param(
        "fieldManager",
        description="fieldManager is a name associated with the actor or entity that is making these changes.",
    ),
    _param(
        "fieldValidation",
        description="fieldValidation instructs the server on how to handle objects in the request "
        "containing unknown or duplicate fields. Valid values are: Ignore, Warn, Strict.",
    ),
]
_PATCH_CONTENT = [
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
]
_OBJECT_BODY = {"content": {"*/*": {"schema": {"type": "object"}}}, "required": True}


def _operation(verb: str, action: str, info: ResourceInfo, *, subresource: str = "") -> dict[str, Any]:
    kind_word = info.kind + ("" if not subresource else subresource.capitalize())
    operation: dict[str, Any] = {
        "operationId": f"{verb}{kind_word}",
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": info.group, "version": info.version, "kind": info.kind},
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}},
            "401": {"description": "Unauthorized"},
        },
    }
    if action == "patch":
        operation["parameters"] = [
            *_WRITE_PARAMS,
            _param("force", description='Force is going to "force" Apply requests.'),
        ]
        operation["requestBody"] = {
            "content": {c: {"schema": {"type": "object"}} for c in _PATCH_CONTENT},
            "required": True,
        }
    elif action in ("put", "post"):
        operation["parameters"] = list(_WRITE_PARAMS)
        operation["requestBody"] = _OBJECT_BODY
    elif action == "delete":
        operation["parameters"] = [_param("dryRun"), _param("gracePeriodSeconds"), _param("propagationPolicy")]
    elif action in ("list", "deletecollection"):
        operation["parameters"] = [
            _param(p)
            for p in (
                "continue",
                "fieldSelector",
                "labelSelector",
                "limit",
                "resourceVersion",
                "resourceVersionMatch",
                "timeoutSeconds",
                "watch",
                "allowWatchBookmarks",
                "sendInitialEvents",
            )
        ]
    return operation


def _base(info: ResourceInfo) -> str:
    return f"/apis/{info.group}/{info.version}" if info.group else f"/api/{info.version}"


def group_version_document(group_version: str, resources: list[ResourceInfo]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for info in resources:
        if info.group_version != group_version:
            continue
        base = _base(info)
        scope = f"{base}/namespaces/{{namespace}}" if info.namespaced else base
        path_params = [_param("namespace", "path")] if info.namespaced else []
        collection: dict[str, Any] = {"parameters": path_params}
        if "list" in info.verbs:
            collection["get"] = _operation("list", "list", info)
        if "create" in info.verbs:
            collection["post"] = _operation("create", "post", info)
        if "deletecollection" in info.verbs:
            collection["delete"] = _operation("deleteCollection", "deletecollection", info)
        paths[f"{scope}/{info.resource}"] = collection
        item: dict[str, Any] = {"parameters": [_param("name", "path"), *path_params]}
        for verb, action, method in (
            ("read", "get", "get"),
            ("replace", "put", "put"),
            ("patch", "patch", "patch"),
            ("delete", "delete", "delete"),
        ):
            if action.replace("put", "update") in info.verbs or action in info.verbs:
                item[method] = _operation(verb, action, info)
        paths[f"{scope}/{info.resource}/{{name}}"] = item
        for sub in sorted(info.subresources & {"status"}):
            paths[f"{scope}/{info.resource}/{{name}}/{sub}"] = {
                "parameters": [_param("name", "path"), *path_params],
                "get": _operation("read", "get", info, subresource=sub),
                "put": _operation("replace", "put", info, subresource=sub),
                "patch": _operation("patch", "patch", info, subresource=sub),
            }
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.4"},
        "paths": paths,
        "components": {
            "schemas": {},
            "securitySchemes": {"BearerToken": {"type": "apiKey", "name": "authorization", "in": "header"}},
        },
    }


def document_bytes(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def document_hash(body: bytes) -> str:
    return hashlib.sha512(body).hexdigest().upper()


def index(group_versions: list[str], hashes: dict[str, str]) -> dict[str, Any]:
    paths = {}
    for gv in group_versions:
        rel = f"api/{gv}" if "/" not in gv else f"apis/{gv}"
        paths[rel] = {"serverRelativeURL": f"/openapi/v3/{rel}?hash={hashes[gv]}"}
    return {"paths": paths}
