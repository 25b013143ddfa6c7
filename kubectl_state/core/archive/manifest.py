"""manifest.json: the data types, their JSON form, and the checks a manifest must pass.

The JSON Schema (kubectl_state/schemas/manifest.schema.json) checks each field on its own;
`consistency_problems` checks what a schema cannot express: that every path is exactly where
its entry says the object belongs, that no path appears twice, and that the per-resource
counts agree with the object list.
"""

from __future__ import annotations

import functools
import io
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import IO, Any

import kubectl_state
from kubectl_state.core.archive.layout import MANIFEST_NAME, object_path, resource_key, unsafe_path_reason
from kubectl_state.core.archive.problems import ArchiveProblemError, Problem, ProblemKind
from kubectl_state.core.archive.schema import schema_errors

FORMAT_VERSION = 1
SUPPORTED_FORMAT_VERSIONS = frozenset({FORMAT_VERSION})
TOOL_NAME = "kubectl-state"


@dataclass(frozen=True, slots=True)
class ToolInfo:
    name: str = TOOL_NAME
    version: str = kubectl_state.__version__


@dataclass(frozen=True, slots=True)
class Source:
    """The cluster a backup was taken from."""

    server: str
    kubernetes_version: str
    cluster_id: str | None = None
    context: str | None = None


@dataclass(frozen=True, slots=True)
class ResourceEntry:
    """One listed collection: its identity, the list's resourceVersion and the objects kept."""

    group: str
    version: str
    resource: str
    kind: str
    namespaced: bool
    list_resource_version: str | None
    count: int

    @property
    def key(self) -> str:
        return resource_key(self.resource, self.group)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


@dataclass(frozen=True, slots=True)
class ObjectEntry:
    """One object file. `uid` is the object's uid in the source cluster: the file itself has
    it removed, but import needs it to relink ownerReferences to the new uids."""

    path: str
    sha256: str
    size: int
    group: str
    resource: str
    name: str
    namespace: str | None = None
    uid: str | None = None


@dataclass(frozen=True, slots=True)
class SecretsEncryption:
    scheme: str
    recipients: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Manifest:
    source: Source
    created_at: datetime
    objects: tuple[ObjectEntry, ...] = ()
    resources: tuple[ResourceEntry, ...] = ()
    skipped: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    filters: Mapping[str, Any] = field(default_factory=dict)
    secrets_encryption: SecretsEncryption | None = None
    tool: ToolInfo = field(default_factory=ToolInfo)
    format_version: int = FORMAT_VERSION

    def resource(self, group: str, resource: str) -> ResourceEntry | None:
        for entry in self.resources:
            if entry.group == group and entry.resource == resource:
                return entry
        return None

    def resource_index(self) -> dict[tuple[str, str], ResourceEntry]:
        return {(entry.group, entry.resource): entry for entry in self.resources}

    def to_json(self) -> dict[str, Any]:
        source: dict[str, Any] = {"server": self.source.server, "kubernetesVersion": self.source.kubernetes_version}
        if self.source.cluster_id is not None:
            source["clusterId"] = self.source.cluster_id
        if self.source.context is not None:
            source["context"] = self.source.context
        return {
            "formatVersion": self.format_version,
            "tool": {"name": self.tool.name, "version": self.tool.version},
            "source": source,
            "createdAt": format_time(self.created_at),
            "filters": dict(self.filters),
            "resources": [_resource_json(entry) for entry in self.resources],
            "skipped": {reason: dict(counts) for reason, counts in self.skipped.items()},
            "secretsEncryption": (
                None
                if self.secrets_encryption is None
                else {"scheme": self.secrets_encryption.scheme, "recipients": list(self.secrets_encryption.recipients)}
            ),
            "objects": [_object_json(entry) for entry in self.objects],
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Manifest:
        """Build from a document that already passed the schema."""
        source = doc["source"]
        encryption = doc["secretsEncryption"]
        return cls(
            format_version=doc["formatVersion"],
            tool=ToolInfo(name=doc["tool"]["name"], version=doc["tool"]["version"]),
            source=Source(
                server=source["server"],
                kubernetes_version=source["kubernetesVersion"],
                cluster_id=source.get("clusterId"),
                context=source.get("context"),
            ),
            created_at=parse_time(doc["createdAt"]),
            filters=doc["filters"],
            resources=tuple(
                ResourceEntry(
                    group=r["group"],
                    version=r["version"],
                    resource=r["resource"],
                    kind=r["kind"],
                    namespaced=r["namespaced"],
                    list_resource_version=r["listResourceVersion"],
                    count=r["count"],
                )
                for r in doc["resources"]
            ),
            skipped=doc["skipped"],
            objects=tuple(object_entry_from_json(o) for o in doc["objects"]),
            secrets_encryption=(
                None
                if encryption is None
                else SecretsEncryption(scheme=encryption["scheme"], recipients=tuple(encryption["recipients"]))
            ),
        )


def object_entry_from_json(o: Mapping[str, Any]) -> ObjectEntry:
    return ObjectEntry(
        path=o["path"],
        sha256=o["sha256"],
        size=o["size"],
        group=o["group"],
        resource=o["resource"],
        name=o["name"],
        namespace=o.get("namespace"),
        uid=o.get("uid"),
    )


def _resource_json(entry: ResourceEntry) -> dict[str, Any]:
    return {
        "group": entry.group,
        "version": entry.version,
        "resource": entry.resource,
        "kind": entry.kind,
        "namespaced": entry.namespaced,
        "listResourceVersion": entry.list_resource_version,
        "count": entry.count,
    }


def _object_json(entry: ObjectEntry) -> dict[str, Any]:
    out: dict[str, Any] = {"path": entry.path, "sha256": entry.sha256, "size": entry.size}
    if entry.uid is not None:
        out["uid"] = entry.uid
    out["group"] = entry.group
    out["resource"] = entry.resource
    if entry.namespace is not None:
        out["namespace"] = entry.namespace
    out["name"] = entry.name
    return out


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with second precision, as Kubernetes writes timestamps."""
    if moment.tzinfo is None:
        raise ValueError("timestamps in an archive must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def encode_manifest(manifest: Manifest) -> bytes:
    """manifest.json's bytes, refusing (ArchiveError) a manifest the schema would refuse:
    a reader must never meet an archive this writer produced and cannot read."""
    doc = manifest.to_json()
    errors = list(schema_errors(doc))
    if errors:
        raise ArchiveProblemError(ProblemKind.SCHEMA_INVALID, MANIFEST_NAME, _summarise(errors))
    problems = list(consistency_problems(manifest))
    if problems:
        raise ArchiveProblemError(problems[0].kind, problems[0].path, problems[0].message)
    out = io.BytesIO()
    _write(doc, (object_entry_line(entry) for entry in manifest.objects), out)
    return out.getvalue()


def object_entry_line(entry: ObjectEntry) -> str:
    """One entry of manifest.json's object list, as the line `write_manifest` puts it on:
    `json.dumps(<the entry's JSON>, ensure_ascii=False)`, written out by hand because a writer
    makes one per object and json.dumps' generic path costs more than the rest of the entry."""
    quote = _quote
    return "".join((
        '{"path": ', quote(entry.path), ', "sha256": ', quote(entry.sha256), ', "size": ', str(int(entry.size)),
        "" if entry.uid is None else ', "uid": ' + quote(entry.uid),
        ', "group": ', quote(entry.group), ', "resource": ', quote(entry.resource),
        "" if entry.namespace is None else ', "namespace": ' + quote(entry.namespace),
        ', "name": ', quote(entry.name), "}",
    ))


#: A str as a JSON string, non-ASCII left as it is: what json.dumps(ensure_ascii=False) does.
_quote = json.encoder.encode_basestring


#: Every line object_entry_line makes starts so; the entry's path is the JSON string after it.
_LINE_PREFIX = '{"path": '
_DECODER = json.JSONDecoder()


def entry_line_path(line: str) -> str:
    """The path of the entry on an `object_entry_line` line (what manifest.json is sorted by)."""
    if not line.startswith(_LINE_PREFIX):
        raise ValueError(f"not an object entry line: {line[:80]!r}")
    path, _ = _DECODER.raw_decode(line, len(_LINE_PREFIX))
    return str(path)


def check_object_entries(entries: Sequence[ObjectEntry]) -> None:
    """Refuse (ArchiveError, naming the first offending entry's path) entries that manifest.json's
    schema would refuse. Checked in batches as a writer goes, so the whole list never has to be
    in memory at once; `check_manifest_head` covers the rest of the document. An entry's path
    is not recomputed here: `ArchiveWriter` derives every path with `object_path` itself."""
    if not entries:
        return
    doc = {**_stub_head(), "objects": [_object_json(entry) for entry in entries]}
    for error in schema_errors(doc):
        index, _, rest = error.removeprefix("objects[").partition("]")
        if not index.isdigit():  # not about an entry: cannot happen with a valid stub head
            raise ArchiveProblemError(ProblemKind.SCHEMA_INVALID, MANIFEST_NAME, _summarise([error]))
        where = entries[int(index)].path
        raise ArchiveProblemError(ProblemKind.SCHEMA_INVALID, where,
                                  f"the manifest entry does not match its schema: {rest.lstrip('.') or error}")


@functools.cache
def _stub_head() -> dict[str, Any]:
    """A valid manifest without objects, to check entries against the schema on their own."""
    stub = Manifest(source=Source(server="https://stub.invalid", kubernetes_version="v0.0.0"),
                    created_at=datetime(2000, 1, 1, tzinfo=UTC))
    return stub.to_json()


def check_manifest_head(manifest: Manifest) -> None:
    """Refuse (ArchiveError) everything but the object list that the schema or the consistency
    rules would refuse: the counterpart of `check_object_entries` for a streamed manifest."""
    doc = {**manifest.to_json(), "objects": []}
    errors = list(schema_errors(doc))
    if errors:
        raise ArchiveProblemError(ProblemKind.SCHEMA_INVALID, MANIFEST_NAME, _summarise(errors))
    for found in consistency_problems(Manifest(
            source=manifest.source, created_at=manifest.created_at,
            resources=tuple(replace(res, count=0) for res in manifest.resources))):
        raise ArchiveProblemError(found.kind, found.path, found.message)


def write_manifest(manifest: Manifest, entry_lines: Iterable[str], out: IO[bytes]) -> None:
    """Write manifest.json to `out`: `manifest` (whose own `objects` is left out) with the object
    entries given as `object_entry_line` lines, in the order given (path order, for a writer).

    What `encode_manifest` produces, byte for byte, for a manifest too large to hold: the
    caller has checked the parts with `check_manifest_head` and `check_object_entries`."""
    _write(manifest.to_json(), entry_lines, out)


def _write(doc: dict[str, Any], lines: Iterable[str], out: IO[bytes]) -> None:
    # Indented for people, except that each object entry is one line: a manifest of 100,000
    # objects stays a 100,000-line file that `grep` answers questions about.
    head = json.dumps({key: value for key, value in doc.items() if key != "objects"}, indent=2, ensure_ascii=False)
    out.write(f'{head[:-2]},\n  "objects": [\n'.encode())
    chunk: list[str] = []
    separator = ""
    for line in lines:
        chunk.append(separator + "    " + line)
        separator = ",\n"
        if len(chunk) >= 4096:
            out.write("".join(chunk).encode("utf-8"))
            chunk.clear()
    out.write(("".join(chunk) + "\n  ]\n}\n").encode("utf-8"))


def decode_document(data: bytes) -> tuple[dict[str, Any] | None, list[Problem]]:
    """manifest.json's bytes as a JSON document, and its problems.

    The document is None when it cannot be interpreted at all (not JSON, not an object, an
    unknown format version); a document that merely fails its schema is returned with the
    violations, so `verify` can still use its well-formed parts. The format version is
    checked before the schema, so a newer archive is reported as such rather than as a list
    of schema violations.
    """

    def problem(kind: ProblemKind, message: str) -> tuple[None, list[Problem]]:
        return None, [Problem(kind, MANIFEST_NAME, message)]

    try:
        doc = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        return problem(ProblemKind.MANIFEST_INVALID, "the manifest is not valid UTF-8")
    except (ValueError, RecursionError) as exc:
        return problem(ProblemKind.MANIFEST_INVALID, f"the manifest is not valid JSON: {str(exc)[:200]}")
    if not isinstance(doc, dict):
        return problem(ProblemKind.MANIFEST_INVALID, "the manifest is not a JSON object")
    version = doc.get("formatVersion")
    if not isinstance(version, int) or isinstance(version, bool):
        return problem(ProblemKind.MANIFEST_INVALID, "the manifest has no integer formatVersion")
    if version not in SUPPORTED_FORMAT_VERSIONS:
        known = ", ".join(map(str, sorted(SUPPORTED_FORMAT_VERSIONS)))
        return problem(
            ProblemKind.UNKNOWN_FORMAT_VERSION,
            f"unknown archive format version {version}; "
            f"kubectl-state {kubectl_state.__version__} reads version {known}",
        )
    return doc, [Problem(ProblemKind.SCHEMA_INVALID, MANIFEST_NAME, e) for e in schema_errors(doc)]


def decode_manifest(data: bytes) -> Manifest:
    """A trusted Manifest from manifest.json's bytes, or ArchiveError with the first problem."""
    doc, problems = decode_document(data)
    if problems:
        first = problems[0]
        if first.kind is ProblemKind.SCHEMA_INVALID:
            raise ArchiveProblemError(first.kind, first.path, _summarise([p.message for p in problems]))
        raise ArchiveProblemError(first.kind, first.path, first.message)
    assert doc is not None  # noqa: S101 - decode_document returns problems whenever doc is None
    manifest = Manifest.from_json(doc)
    for found in consistency_problems(manifest):
        raise ArchiveProblemError(found.kind, found.path, found.message)
    return manifest


def _summarise(errors: list[str]) -> str:
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"the manifest does not match its schema: {errors[0]}{more}"


def path_problem(entry: ObjectEntry) -> Problem | None:
    """Whether `entry.path` is safe and exactly where the entry's object belongs."""
    reason = unsafe_path_reason(entry.path)
    if reason is not None:
        return Problem(ProblemKind.PATH_OUTSIDE_ARCHIVE, entry.path, f"refusing this path: {reason}")
    try:
        expected = object_path(entry.resource, entry.group, entry.namespace, entry.name)
    except ArchiveProblemError as exc:
        return Problem(exc.problem.kind, entry.path, exc.problem.message)
    if entry.path != expected:
        return Problem(ProblemKind.PATH_MISMATCH, entry.path, f"the entry's object belongs at {expected}")
    return None


def consistency_problems(manifest: Manifest) -> Iterator[Problem]:
    listed: dict[tuple[str, str], ResourceEntry] = {}
    for res in manifest.resources:
        if (res.group, res.resource) in listed:
            yield Problem(ProblemKind.INCONSISTENT, MANIFEST_NAME, f"resource {res.key} is listed twice")
        listed[(res.group, res.resource)] = res
    seen: set[str] = set()
    counts: Counter[tuple[str, str]] = Counter()
    for entry in manifest.objects:
        found = path_problem(entry)
        if found is not None:
            yield found
        if entry.path in seen:
            yield Problem(ProblemKind.DUPLICATE, entry.path, "the manifest lists this path more than once")
        seen.add(entry.path)
        counts[(entry.group, entry.resource)] += 1
        owner = listed.get((entry.group, entry.resource))
        if owner is None:
            key = resource_key(entry.resource, entry.group)
            yield Problem(ProblemKind.INCONSISTENT, entry.path, f"resource {key} is not listed in the manifest")
        elif owner.namespaced != (entry.namespace is not None):
            scope = "namespaced" if owner.namespaced else "cluster-scoped"
            yield Problem(ProblemKind.INCONSISTENT, entry.path, f"{owner.key} is {scope} but this entry is not")
    for (group, resource), res in listed.items():
        if counts[(group, resource)] != res.count:
            yield Problem(
                ProblemKind.INCONSISTENT,
                MANIFEST_NAME,
                f"resource {res.key} declares {res.count} objects but {counts[(group, resource)]} are listed",
            )
