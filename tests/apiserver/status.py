"""`kind: Status` failures, as the API server returns them.

Every refusal in the server is raised as `ApiStatusError` and turned into a Status body by
the HTTP layer, so reason and code always agree with the API conventions.
"""

from __future__ import annotations

from typing import Any


class ApiStatusError(Exception):
    """A failure the API reports as a `Status` object with an HTTP code and a reason."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def body(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            status["details"] = self.details
        return status


def _details(name: str, group: str, resource: str, **extra: Any) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name, "kind": resource}
    if group:
        details["group"] = group
    details.update(extra)
    return details


def qualified(resource: str, group: str) -> str:
    """`deployments.apps`, or `configmaps` for the core group, as messages spell it."""
    return f"{resource}.{group}" if group else resource


def not_found(resource: str, group: str, name: str) -> ApiStatusError:
    return ApiStatusError(
        404,
        "NotFound",
        f'{qualified(resource, group)} "{name}" not found',
        details=_details(name, group, resource),
    )


def already_exists(resource: str, group: str, name: str) -> ApiStatusError:
    return ApiStatusError(
        409,
        "AlreadyExists",
        f'{qualified(resource, group)} "{name}" already exists',
        details=_details(name, group, resource),
    )


def conflict(resource: str, group: str, name: str, why: str | None = None) -> ApiStatusError:
    why = why or "the object has been modified; please apply your changes to the latest version and try again"
    return ApiStatusError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {qualified(resource, group)} "{name}": {why}',
        details=_details(name, group, resource),
    )


def invalid(kind: str, group: str, name: str, causes: list[dict[str, str]]) -> ApiStatusError:
    """422 Invalid with one cause per field, message joined as kube-apiserver joins them."""
    kind_q = f"{kind}.{group}" if group else kind
    texts = [f"{c['field']}: {c['message']}" if c.get("field") else c["message"] for c in causes]
    summary = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    return ApiStatusError(
        422,
        "Invalid",
        f'{kind_q} "{name}" is invalid: {summary}',
        details={"name": name, "group": group, "kind": kind, "causes": causes}
        if group
        else {"name": name, "kind": kind, "causes": causes},
    )


def bad_request(message: str) -> ApiStatusError:
    return ApiStatusError(400, "BadRequest", message)


def unauthorized() -> ApiStatusError:
    return ApiStatusError(401, "Unauthorized", "Unauthorized")


def forbidden(message: str, resource: str = "", group: str = "", name: str = "") -> ApiStatusError:
    return ApiStatusError(403, "Forbidden", message, details=_details(name, group, resource) if resource else None)


def method_not_supported(verb: str, resource: str, group: str) -> ApiStatusError:
    return ApiStatusError(
        405,
        "MethodNotAllowed",
        f'{verb} is not supported on resources of kind "{qualified(resource, group)}"',
        details={"group": group, "kind": resource} if group else {"kind": resource},
    )


def unsupported_media_type(content_type: str) -> ApiStatusError:
    return ApiStatusError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types include: "
        f"application/json, application/yaml, application/apply-patch+yaml, "
        f"application/json-patch+json, application/merge-patch+json, "
        f'application/strategic-merge-patch+json (got "{content_type}")',
    )


def expired(message: str) -> ApiStatusError:
    return ApiStatusError(410, "Expired", message)


def gone(message: str) -> ApiStatusError:
    return ApiStatusError(410, "Gone", message)


def internal(message: str) -> ApiStatusError:
    return ApiStatusError(500, "InternalError", f"Internal error occurred: {message}")


def success_status(name: str, group: str, resource: str, uid: str = "") -> dict[str, Any]:
    details = _details(name, group, resource)
    if uid:
        details["uid"] = uid
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}
