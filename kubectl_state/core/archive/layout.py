"""Where things live inside an archive, and which relative paths are safe to follow.

Every object file path is derived from (resource, group, namespace, name) by `object_path`
alone, so the reader can recompute it and refuse a manifest whose paths point anywhere else.
"""

from __future__ import annotations

import re

from kubectl_state.core.archive.problems import ArchiveProblemError, ProblemKind

MANIFEST_NAME = "manifest.json"
RESOURCES_DIR = "resources"
OBJECT_SUFFIX = ".yaml"

# A resource (plural) is a DNS-1123 label without dots: a dot would make `<resource>.<group>`
# ambiguous ("foo.bar" in the core group and "foo" in group "bar" would share a directory).
_RESOURCE_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
# API groups are DNS subdomains; the core group is "".
_GROUP_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def resource_key(resource: str, group: str) -> str:
    """`<resource>.<group>`, or `<resource>` for the core group: the directory name under
    `resources/` and the key used for per-resource counts."""
    return f"{resource}.{group}" if group else resource


def _check_segment(what: str, value: str) -> None:
    # Kubernetes names never contain "/", but a hostile archive or object might, and a
    # name of "." or ".." would turn a path segment into a directory traversal.
    if not value or value in (".", "..") or "/" in value or "\0" in value or "\\" in value:
        raise ArchiveProblemError(
            ProblemKind.PATH_OUTSIDE_ARCHIVE, "", f"{what} {value!r} cannot be used as a file name in an archive"
        )


def object_path(resource: str, group: str, namespace: str | None, name: str) -> str:
    """The archive-relative path of one object file (always with "/" separators).

    `resources/configmaps/namespaces/default/app.yaml`,
    `resources/customresourcedefinitions.apiextensions.k8s.io/cluster/foos.example.com.yaml`.
    Raises ArchiveError for a resource, group, namespace or name that could escape its
    directory or collide with another resource's directory.
    """
    if not _RESOURCE_RE.fullmatch(resource):
        raise ArchiveProblemError(ProblemKind.PATH_OUTSIDE_ARCHIVE, "", f"resource {resource!r} is not a valid name")
    if group and not _GROUP_RE.fullmatch(group):
        raise ArchiveProblemError(ProblemKind.PATH_OUTSIDE_ARCHIVE, "", f"API group {group!r} is not a valid name")
    _check_segment("name", name)
    top = f"{RESOURCES_DIR}/{resource_key(resource, group)}"
    if namespace is None:
        return f"{top}/cluster/{name}{OBJECT_SUFFIX}"
    _check_segment("namespace", namespace)
    return f"{top}/namespaces/{namespace}/{name}{OBJECT_SUFFIX}"


def unsafe_path_reason(path: str) -> str | None:
    """Why `path` (archive-relative, "/"-separated) must not be followed, or None if it
    stays inside the archive. Non-canonical spellings ("a//b", "./a") are refused too: the
    writer never produces them, and accepting them would let two spellings name one file."""
    parts = path.split("/")
    rules = (
        (not path, "the path is empty"),
        ("\0" in path, "the path contains a NUL byte"),
        (path.startswith("/"), "the path is absolute"),
        ("\\" in path, "the path contains a backslash"),
        (".." in parts, "the path contains '..'"),
        (any(part in ("", ".") for part in parts), "the path is not in canonical form"),
    )
    return next((reason for broken, reason in rules if broken), None)


def normalize_member_name(name: str) -> str:
    """A tar member name as the archive-relative path it stands for.

    `tar -C dir -czf x.tar.gz .` writes `./manifest.json` and directories with a trailing
    slash; both spellings are accepted for the same layout. Safety is checked afterwards
    with `unsafe_path_reason`.
    """
    while name.startswith("./"):
        name = name[2:]
    return name.rstrip("/") if name not in ("", "/") else name
