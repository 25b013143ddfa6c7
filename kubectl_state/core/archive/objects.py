"""Turning one object file's bytes into a trusted object, or saying why not.

Order matters: size and checksum are checked before parsing, so the YAML parser only ever
sees bytes the manifest vouches for; the object's identity is checked after, so a file
cannot claim to be something other than what its path says (a Secret smuggled in under
configmaps/, an object for another namespace).
"""

from __future__ import annotations

import hashlib
from typing import Any

from kubectl_state.core.archive.limits import ReadLimits
from kubectl_state.core.archive.manifest import ObjectEntry, ResourceEntry
from kubectl_state.core.archive.problems import ArchiveProblemError, ProblemKind
from kubectl_state.core.archive.yamlcodec import load_object
from kubectl_state.core.errors import ArchiveError


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_bytes(entry: ObjectEntry, data: bytes) -> None:
    if len(data) != entry.size:
        what = "larger" if len(data) > entry.size else "smaller"
        raise ArchiveProblemError(
            ProblemKind.SIZE_MISMATCH,
            entry.path,
            f"the file is {len(data)} bytes, {what} than the {entry.size} bytes the manifest declares",
        )
    if sha256_hex(data) != entry.sha256:
        raise ArchiveProblemError(
            ProblemKind.CHECKSUM_MISMATCH, entry.path, "the file's sha256 does not match the manifest"
        )


def parse_checked(
    entry: ObjectEntry, data: bytes, resource: ResourceEntry | None, limits: ReadLimits
) -> dict[str, Any]:
    """The object in `data`, after its bytes and its identity are checked against `entry`."""
    check_bytes(entry, data)
    try:
        obj = load_object(data, max_bytes=limits.max_object_bytes, max_depth=limits.max_yaml_depth)
    except ArchiveError as exc:
        raise ArchiveProblemError(ProblemKind.INVALID_OBJECT, entry.path, exc.message) from None
    check_identity(entry, obj, resource)
    return obj


def check_identity(entry: ObjectEntry, obj: dict[str, Any], resource: ResourceEntry | None) -> None:
    def mismatch(message: str) -> ArchiveProblemError:
        return ArchiveProblemError(ProblemKind.KIND_MISMATCH, entry.path, message)

    metadata = obj.get("metadata")
    if not isinstance(metadata, dict):
        raise mismatch("the object has no metadata")
    if resource is not None:
        if obj.get("kind") != resource.kind:
            raise mismatch(f"the object's kind is {obj.get('kind')!r} but {resource.key} holds {resource.kind}")
        if obj.get("apiVersion") != resource.api_version:
            raise mismatch(
                f"the object's apiVersion is {obj.get('apiVersion')!r} but {resource.key} was read as "
                f"{resource.api_version}"
            )
    elif not isinstance(obj.get("apiVersion"), str) or obj["apiVersion"].rpartition("/")[0] != entry.group:
        raise mismatch(f"the object's apiVersion {obj.get('apiVersion')!r} is not in group {entry.group!r}")
    if metadata.get("name") != entry.name:
        raise mismatch(f"the object is named {metadata.get('name')!r}, not {entry.name!r} as its path says")
    if metadata.get("namespace") != entry.namespace:
        raise mismatch(
            f"the object's namespace is {metadata.get('namespace')!r}, not {entry.namespace!r} as its path says"
        )
