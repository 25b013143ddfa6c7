"""What an import reads: every object of an archive, verified, before anything is written.

An archive (directory or .tar.gz) is read in one full `iter_objects` pass, which checks
each file's size, sha256, YAML and identity against the manifest (and, for a .tar.gz, that
no listed file is missing) and decrypts Secrets. That pass is needed anyway: the plan needs
every object's owner references to order owners first. Running `archive.verify` first
would read and hash everything twice for nothing more than the directory walk's stray-file
check, which does not matter to an import (it only reads what the manifest vouches for).
So a corrupted archive (checksum, schema, format version, path traversal, truncated tar)
raises ArchiveError here, before the first request that writes. The cost is memory: the
objects are held until the import ends, like the plan that refers to them.

A YAML stream (`-`, standard input) has no manifest: no checksums and no recorded uids.
Its resources are resolved with the target's discovery (or a CRD in the same stream), and
owners are matched by apiVersion/kind/namespace/name instead of by uid.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from kubectl_state.core.archive import SecretDecrypter, open_archive
from kubectl_state.core.archive.yamlcodec import load_object
from kubectl_state.core.errors import ArchiveError, InvalidInputError
from kubectl_state.core.kube.discovery import ApiResource, Discovery
from kubectl_state.core.plan.model import ObjectId, PlanInput

#: A YAML stream larger than this is refused (it is held in memory whole).
MAX_STREAM_BYTES = 2 * 1024 * 1024 * 1024
_DOCUMENT_MARKER = re.compile(rb"^---[ \t]*(?:#.*)?$", re.MULTILINE)


@dataclass(frozen=True)
class ImportSource:
    #: What was read, for people: a path or "standard input".
    description: str
    #: sha256 naming the archive's content (its manifest, or the stream's bytes).
    digest: str
    inputs: list[PlanInput]

    def namespaces(self) -> set[str]:
        return {i.source.namespace for i in self.inputs if i.source.namespace is not None} | {
            i.source.name for i in self.inputs if (i.source.group, i.source.resource) == ("", "namespaces")}


def read_archive(path: str | os.PathLike[str], *, decrypter: SecretDecrypter | None = None) -> ImportSource:
    """Every object of the archive at `path`, verified. Raises ArchiveError (nothing read is
    used) when any part of it cannot be trusted, and before reading any object when its
    Secrets are encrypted and no decrypter was given."""
    with open_archive(path, decrypter=decrypter) as archive:
        manifest = archive.manifest
        if archive.needs_decrypter:
            scheme = manifest.secrets_encryption.scheme if manifest.secrets_encryption else "age"
            raise ArchiveError(f"the archive's Secrets are encrypted with {scheme}; an {scheme} identity "
                               "(--identity FILE) is needed to import it. Nothing was written.")
        index = manifest.resource_index()
        inputs: list[PlanInput] = []
        for entry, obj in archive.iter_objects():
            res = index[(entry.group, entry.resource)]
            resource = ApiResource(group=res.group, version=res.version, resource=res.resource, kind=res.kind,
                                   namespaced=res.namespaced)
            inputs.append(PlanInput(ObjectId(entry.group, entry.resource, entry.namespace, entry.name),
                                    resource, obj, entry.uid))
        canonical = json.dumps(manifest.to_json(), sort_keys=True, separators=(",", ":")).encode()
        return ImportSource(str(archive.path), hashlib.sha256(canonical).hexdigest(), inputs)


def split_stream(data: bytes) -> Iterator[dict[str, Any]]:
    """The objects of a multi-document YAML stream, each parsed by the archive's strict loader
    (no aliases, tags or excessive depth); `kind: List` documents are expanded."""
    if len(data) > MAX_STREAM_BYTES:
        raise InvalidInputError(f"the YAML stream is larger than {MAX_STREAM_BYTES} bytes")
    bounds = [m.start() for m in _DOCUMENT_MARKER.finditer(data)]
    starts = [0, *bounds]
    for number, (begin, end) in enumerate(zip(starts, [*bounds, len(data)], strict=True), start=1):
        chunk = data[begin:end]
        if chunk.startswith(b"---"):
            chunk = chunk.split(b"\n", 1)[1] if b"\n" in chunk else b""
        if not any(line.strip() and not line.lstrip().startswith(b"#") for line in chunk.splitlines()):
            continue
        try:
            obj = load_object(chunk, max_bytes=len(chunk) + 1)
        except ArchiveError as exc:
            raise InvalidInputError(f"YAML document {number} of the stream: {exc.message}") from None
        if obj.get("kind") == "List" and isinstance(obj.get("items"), list):
            yield from (item for item in obj["items"] if isinstance(item, dict))
        else:
            yield obj


def read_stream(data: bytes, discovery: Discovery) -> ImportSource:
    """The objects of a YAML stream, their resources resolved against `discovery` or against
    CRDs in the stream itself."""
    objects = list(split_stream(data))
    custom = _stream_crds(objects)
    served = {(r.group_version, r.kind): r for r in reversed(discovery.all_versions)}
    served.update({(r.group_version, r.kind): r for r in discovery.resources})
    inputs: list[PlanInput] = []
    seen: set[ObjectId] = set()
    for number, obj in enumerate(objects, start=1):
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        metadata = obj.get("metadata")
        if not isinstance(api_version, str) or not isinstance(kind, str) or not isinstance(metadata, dict) or \
                not isinstance(metadata.get("name"), str):
            raise InvalidInputError(f"object {number} of the stream has no apiVersion, kind or metadata.name")
        resource = served.get((api_version, kind)) or custom.get((api_version, kind))
        resolved = resource is not None
        group, _, version = api_version.rpartition("/")
        if resource is None:
            resource = ApiResource(group=group, version=version, resource=kind.lower(), kind=kind,
                                   namespaced=isinstance(metadata.get("namespace"), str))
        namespace = metadata.get("namespace") if resource.namespaced else None
        if resource.namespaced and not isinstance(namespace, str):
            namespace = "default"  # as kubectl apply does without -n
            metadata = {**metadata, "namespace": namespace}
        object_id = ObjectId(resource.group, resource.resource, namespace, metadata["name"])
        if object_id in seen:
            raise InvalidInputError(f"the stream holds {object_id} twice")
        seen.add(object_id)
        inputs.append(PlanInput(object_id, resource, {**obj, "metadata": metadata}, None, resolved))
    digest = hashlib.sha256(data).hexdigest()
    return ImportSource("standard input", digest, _with_owner_uids(inputs))


def _stream_crds(objects: Iterable[dict[str, Any]]) -> dict[tuple[str, str], ApiResource]:
    found: dict[tuple[str, str], ApiResource] = {}
    for obj in objects:
        if obj.get("kind") != "CustomResourceDefinition" or not str(obj.get("apiVersion", "")).startswith(
                "apiextensions.k8s.io/"):
            continue
        spec = obj.get("spec") or {}
        names = spec.get("names") or {}
        for version in spec.get("versions") or ():
            if isinstance(version, dict) and isinstance(version.get("name"), str):
                res = ApiResource(group=str(spec.get("group")), version=version["name"],
                                  resource=str(names.get("plural")), kind=str(names.get("kind")),
                                  namespaced=spec.get("scope") == "Namespaced",
                                  subresources=frozenset((version.get("subresources") or {}).keys()))
                found[(res.group_version, res.kind)] = res
    return found


def _with_owner_uids(inputs: list[PlanInput]) -> list[PlanInput]:
    """Give each stream object the uid its dependents' owner references name it by, so owners
    are ordered and relinked as with an archive's recorded uids."""
    by_name = {(i.resource.group, i.resource.kind, i.source.namespace, i.source.name): n for n, i in enumerate(inputs)}
    uids: dict[int, str] = {}
    for item in inputs:
        for ref in (item.obj.get("metadata") or {}).get("ownerReferences") or ():
            if not isinstance(ref, dict) or not isinstance(ref.get("uid"), str):
                continue
            group = str(ref.get("apiVersion", "")).rpartition("/")[0]
            for namespace in (item.source.namespace, None):
                owner = by_name.get((group, str(ref.get("kind")), namespace, str(ref.get("name"))))
                if owner is not None:
                    uids.setdefault(owner, ref["uid"])
                    break
    return [PlanInput(i.source, i.resource, i.obj, uids.get(n), i.resolved) for n, i in enumerate(inputs)]
