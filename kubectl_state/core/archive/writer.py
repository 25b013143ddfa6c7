"""Writing an archive: objects stream to disk as they come, the manifest is written last.

    with open_archive_writer("backup.tar.gz", source=source, filters=filters) as writer:
        writer.record_list("apps", "v1", "deployments", "Deployment", True, "12345")
        writer.add_object("apps", "v1", "deployments", "Deployment", True, obj, uid=uid)
        writer.count_skip("owned-by-controller", "replicasets", group="apps")
        writer.commit()

Leaving the `with` block without `commit()` (an exception, Ctrl-C, a forgotten call)
discards everything: nothing appears at PATH.
"""

from __future__ import annotations

import heapq
import json
import os
import tempfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Protocol, Self

from kubectl_state.core.archive.layout import object_path, resource_key
from kubectl_state.core.archive.manifest import (
    Manifest,
    ObjectEntry,
    ResourceEntry,
    SecretsEncryption,
    Source,
    check_manifest_head,
    check_object_entries,
    entry_line_path,
    object_entry_from_json,
    object_entry_line,
    write_manifest,
)
from kubectl_state.core.archive.objects import sha256_hex
from kubectl_state.core.archive.secrets import SecretEncrypter, encrypt_secret, is_secret
from kubectl_state.core.archive.stores import DirectoryStore, Store, TarGzStore, check_target, format_for_path
from kubectl_state.core.archive.yamlcodec import dump_object
from kubectl_state.core.errors import ArchiveError, InvalidInputError, UsageError


class ObjectSink(Protocol):
    """What an exporter writes to: an archive (`ArchiveWriter`) or a YAML stream
    (`YamlStreamWriter`). Both are context managers that discard output unless committed."""

    # Positional to match the exporter's call sites: (group, version, resource, kind, namespaced, obj).
    def add_object(  # noqa: PLR0917
        self,
        group: str,
        version: str,
        resource: str,
        kind: str,
        namespaced: bool,
        obj: Mapping[str, Any],
        *,
        uid: str | None = None,
    ) -> object: ...

    def record_list(  # noqa: PLR0917 - same positional identity as add_object
        self, group: str, version: str, resource: str, kind: str, namespaced: bool, list_resource_version: str | None
    ) -> None: ...

    def count_skip(self, reason: str, resource: str, group: str = "", count: int = 1) -> None: ...

    def commit(self) -> object: ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


def api_version(group: str, version: str) -> str:
    return f"{group}/{version}" if group else version


def object_identity(  # noqa: PLR0917 - same positional identity as add_object
    group: str, version: str, resource: str, kind: str, namespaced: bool, obj: Mapping[str, Any]
) -> tuple[str | None, str]:
    """(namespace, name) of `obj`, after checking that it is what the caller says it is; a
    mismatch here would be refused by every reader later, so it is refused now."""
    where = resource_key(resource, group)
    if obj.get("apiVersion") != api_version(group, version) or obj.get("kind") != kind:
        raise ArchiveError(
            f"cannot store a {obj.get('apiVersion')}/{obj.get('kind')} object as {where} "
            f"({api_version(group, version)} {kind})"
        )
    metadata = obj.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    if not isinstance(name, str):
        raise ArchiveError(f"cannot store a {kind} without metadata.name")
    namespace = metadata.get("namespace") if isinstance(metadata, Mapping) else None
    if namespaced and not isinstance(namespace, str):
        raise ArchiveError(f"cannot store {kind} {name}: {where} is namespaced but the object has no namespace")
    if not namespaced and namespace is not None:
        raise ArchiveError(f"cannot store {kind} {name}: {where} is cluster-scoped but the object has a namespace")
    return namespace, name


@dataclass(slots=True)
class _Listed:
    version: str
    kind: str
    namespaced: bool
    list_resource_version: str | None = None
    count: int = 0


#: What the writer keeps of each path to refuse a second write: far smaller than the path.
_path_hash = hash


class _EntrySpool:
    """The manifest's object entries while an archive is written, as the lines manifest.json
    will hold. Up to `run` lines stay in memory; past that they go, sorted by path, to an
    unnamed temporary file beside the archive (a "run"), and at commit the runs are merged
    back in path order. Memory holds one run whatever the number of objects.

    Not thread-safe: the writer calls it under its lock."""

    def __init__(self, directory: Path, run: int) -> None:
        self._directory = directory
        self._run = run
        self._lines: list[tuple[str, str]] = []  # (path, line)
        self._runs: list[IO[str]] = []

    def add(self, path: str, line: str) -> None:
        self._lines.append((path, line))
        if len(self._lines) >= self._run:
            self._spill()

    def _spill(self) -> None:
        self._lines.sort()
        # Unnamed (O_TMPFILE) where the system allows it: nothing is left behind by a crash.
        run = tempfile.TemporaryFile(  # noqa: SIM115 - open until close(), read back at commit
            "w+", encoding="utf-8", errors="surrogatepass", newline="\n", dir=self._directory, prefix=".spool-"
        )
        self._runs.append(run)
        run.writelines(line + "\n" for _, line in self._lines)
        run.flush()
        self._lines = []

    def contains(self, path: str) -> bool:
        """Whether an entry for `path` was added. Reads the runs back: meant for the rare path
        whose hash was seen before, never for every object."""
        if any(known == path for known, _ in self._lines):
            return True
        found = False
        for run in self._runs:
            run.seek(0)
            found = found or any(entry_line_path(line.rstrip("\n")) == path for line in run)
            run.seek(0, os.SEEK_END)
        return found

    def sorted_lines(self) -> Iterator[str]:
        """Every line added, in path order."""
        if not self._runs:
            yield from (line for _, line in sorted(self._lines))
            return
        if self._lines:
            self._spill()
        for run in self._runs:
            run.seek(0)
        yield from heapq.merge(*((line.rstrip("\n") for line in run) for run in self._runs), key=entry_line_path)

    def close(self) -> None:
        for run in self._runs:
            run.close()
        self._runs = []
        self._lines = []


class ArchiveWriter:
    """Builds one archive. Thread-safe: exporters may add objects from several threads."""

    #: Manifest entries checked against the schema at once (one schema pass per batch).
    CHECK_BATCH = 512
    #: Manifest entries held in memory before they are spilled, sorted, to a temporary file.
    SPOOL_RUN = 16384

    def __init__(
        self,
        store: Store,
        *,
        source: Source,
        filters: Mapping[str, Any],
        created_at: datetime,
        overwrite: bool,
        encryption: SecretEncrypter | None,
    ) -> None:
        self._store = store
        self._source = source
        self._filters = dict(filters)
        self._created_at = created_at
        self._overwrite = overwrite
        self._encryption = encryption
        self._lock = threading.Lock()
        # Signalled when an add_object finishes writing, so commit() can wait for stragglers.
        self._idle = threading.Condition(self._lock)
        self._in_flight = 0
        # Memory must not grow with the number of objects: of each path only its hash is
        # kept to refuse a second write (a hash seen before is checked against the entries
        # themselves), and entries go to a spool once checked against the schema.
        self._path_hashes: set[int] = set()
        self._writing: set[str] = set()  # paths being stored right now
        self._unchecked: list[tuple[ObjectEntry, str]] = []  # (entry, its manifest line)
        self._spool = _EntrySpool(store.final.parent, self.SPOOL_RUN)
        self._failure: str | None = None
        self._listed: dict[tuple[str, str], _Listed] = {}
        self._skipped: dict[str, dict[str, int]] = {}
        self._state = "open"

    @property
    def path(self) -> Path:
        """Where the archive appears on commit."""
        return self._store.final

    def _check_open(self) -> None:
        if self._state != "open":
            raise ArchiveError(f"the archive writer for {self.path} is already {self._state}")

    def _listed_locked(self, group: str, version: str, resource: str, kind: str, namespaced: bool) -> _Listed:
        listed = self._listed.get((group, resource))
        if listed is None:
            listed = self._listed[(group, resource)] = _Listed(version, kind, namespaced)
        elif (listed.version, listed.kind, listed.namespaced) != (version, kind, namespaced):
            raise ArchiveError(
                f"{resource_key(resource, group)} was already recorded as {api_version(group, listed.version)} "
                f"{listed.kind}; one archive holds one version of each resource"
            )
        return listed

    # Positional to match the exporter's call sites: (group, version, resource, kind, namespaced, obj).
    def add_object(  # noqa: PLR0917
        self,
        group: str,
        version: str,
        resource: str,
        kind: str,
        namespaced: bool,
        obj: Mapping[str, Any],
        *,
        uid: str | None = None,
    ) -> ObjectEntry:
        """Write one (already cleaned) object. `uid` is its uid in the source cluster, kept in
        the manifest for relinking ownerReferences; by default metadata.uid, if still there."""
        self._check_open()
        namespace, name = object_identity(group, version, resource, kind, namespaced, obj)
        path = object_path(resource, group, namespace, name)
        if uid is None:
            found = obj["metadata"].get("uid")
            uid = found if isinstance(found, str) and found else None
        if self._encryption is not None and group == "" and resource == "secrets" and is_secret(obj):
            obj = encrypt_secret(obj, self._encryption)
        data = dump_object(obj)
        entry = ObjectEntry(
            path=path,
            sha256=sha256_hex(data),
            size=len(data),
            group=group,
            resource=resource,
            name=name,
            namespace=namespace,
            uid=uid,
        )
        line = object_entry_line(entry)
        with self._lock:
            self._check_open()
            self._claim_locked(path)
            self._listed_locked(group, version, resource, kind, namespaced)
            self._writing.add(path)
            self._in_flight += 1
        stored = False
        try:
            self._store.add(path, data)
            stored = True
        except OSError as exc:
            # A full disk or a vanished directory: one sentence for the person, not a traceback.
            raise ArchiveError(f"cannot write {self.path}: {exc.strerror or exc}") from exc
        finally:
            with self._lock:
                try:
                    self._writing.discard(path)
                    if stored:
                        self._unchecked.append((entry, line))
                        self._listed[(group, resource)].count += 1
                        if len(self._unchecked) >= self.CHECK_BATCH:
                            self._check_unchecked_locked()
                finally:
                    self._in_flight -= 1
                    self._idle.notify_all()
        return entry

    def _claim_locked(self, path: str) -> None:
        """Refuse a path already written, or being written by another thread."""
        digest = _path_hash(path)
        if digest in self._path_hashes and (
            path in self._writing
            or any(entry.path == path for entry, _ in self._unchecked)
            or self._spool.contains(path)
        ):
            raise ArchiveError(f"{path} was already written; an object can be stored only once")
        self._path_hashes.add(digest)

    def _check_unchecked_locked(self) -> None:
        """Check the entries stored since the last batch against the schema, then spool them.
        One the schema refuses leaves the archive uncommittable: its file is in the store."""
        batch, self._unchecked = self._unchecked, []
        try:
            check_object_entries([entry for entry, _ in batch])
        except ArchiveError as exc:
            self._failure = str(exc)
            raise
        try:
            for entry, line in batch:
                self._spool.add(entry.path, line)
        except OSError as exc:
            self._failure = f"cannot write {self.path}: {exc.strerror or exc}"
            raise ArchiveError(self._failure) from exc

    def record_list(  # noqa: PLR0917 - same positional identity as add_object
        self, group: str, version: str, resource: str, kind: str, namespaced: bool, list_resource_version: str | None
    ) -> None:
        """Record that a collection was listed (to the end) at `list_resource_version`, so
        the manifest shows it even when it held no objects worth keeping."""
        with self._lock:
            self._check_open()
            self._listed_locked(
                group, version, resource, kind, namespaced
            ).list_resource_version = list_resource_version

    def count_skip(self, reason: str, resource: str, group: str = "", count: int = 1) -> None:
        """Count `count` objects of `resource` (in `group`) left out for `reason`."""
        if count < 1:
            return
        with self._lock:
            self._check_open()
            per_resource = self._skipped.setdefault(reason, {})
            key = resource_key(resource, group)
            per_resource[key] = per_resource.get(key, 0) + count

    def _manifest_locked(self) -> Manifest:
        """The manifest without its object entries, which come from the spool."""
        encryption = self._encryption
        return Manifest(
            source=self._source,
            created_at=self._created_at,
            filters=self._filters,
            resources=tuple(
                ResourceEntry(group, r.version, resource, r.kind, r.namespaced, r.list_resource_version, r.count)
                for (group, resource), r in sorted(self._listed.items())
            ),
            skipped={reason: dict(sorted(c.items())) for reason, c in sorted(self._skipped.items())},
            secrets_encryption=(
                None if encryption is None else SecretsEncryption(encryption.scheme, tuple(encryption.recipients))
            ),
        )

    def commit(self, *, entries: bool = True) -> Manifest:
        """Write the manifest, make everything durable and publish the archive at PATH.

        Returns the manifest written. With `entries=False` its `objects` is left empty (the
        archive's manifest.json still lists every object): an export of a large cluster has
        no use for all its entries in memory at the end."""
        with self._lock:
            self._check_open()
            self._state = "committing"
            # A file still being written by another thread must be in the manifest, and
            # must not land in the directory after it was published.
            self._idle.wait_for(lambda: self._in_flight == 0)
            try:
                if self._failure is not None:
                    raise ArchiveError(f"cannot commit {self.path}: {self._failure}")
                self._check_unchecked_locked()
                manifest = self._manifest_locked()
                check_manifest_head(manifest)
                # Staged in a temporary file: a tar member's size comes before its bytes.
                with tempfile.TemporaryFile(dir=self._store.final.parent, prefix=".manifest-") as staged:
                    write_manifest(manifest, self._spool.sorted_lines(), staged)
                    staged.flush()
                    staged.seek(0)
                    self._store.finish(staged)
                self._store.publish(self._overwrite)
            except OSError as exc:
                self._discard()
                raise ArchiveError(f"cannot write {self.path}: {exc.strerror or exc}") from exc
            except BaseException:
                self._discard()
                raise
            self._state = "committed"
            if entries:
                objects = tuple(object_entry_from_json(json.loads(line)) for line in self._spool.sorted_lines())
                manifest = replace(manifest, objects=objects)
            self._spool.close()
        return manifest

    def _discard(self) -> None:
        self._state = "aborted"
        self._spool.close()
        self._store.abort()

    def abort(self) -> None:
        """Discard everything written so far. Safe to call more than once."""
        if self._state in ("committed", "aborted"):
            return
        self._discard()

    def close(self) -> None:
        """Like abort() unless the archive was committed."""
        self.abort()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


#: gzip level of a .tar.gz archive. Level 3 compresses at about twice the speed of zlib's
#: default (6) for about a seventh more bytes (an export of 100,000 objects: 12.3 MB instead of
#: 10.8 MB, 0.76 s of CPU less); an export is usually waiting for its CPU, not for its disk.
#: Level 1 would save only 0.04 s more there, for 0.3 MB more.
DEFAULT_COMPRESS_LEVEL = 3


def open_archive_writer(
    path: str | os.PathLike[str],
    *,
    source: Source,
    filters: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    encryption: SecretEncrypter | None = None,
    created_at: datetime | None = None,
    compress_level: int = DEFAULT_COMPRESS_LEVEL,
) -> ArchiveWriter:
    """An ArchiveWriter for a directory, or for a single file if `path` ends in .tar.gz/.tgz.

    Refuses (ArchiveError) an existing PATH other than an empty directory or empty file,
    unless `overwrite` (which still never replaces a directory that is not an archive).
    """
    if os.fspath(path) == "-":
        raise UsageError("'-' is standard output, not an archive path; write a YAML stream with YamlStreamWriter")
    try:
        json.dumps(filters or {})
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"the export filters cannot be recorded in the manifest: {exc}") from None
    final = Path(os.path.abspath(path))
    fmt = format_for_path(final)
    check_target(final, fmt, overwrite)
    moment = (created_at or datetime.now(UTC)).replace(microsecond=0)
    try:
        store: Store = (
            DirectoryStore(final)
            if fmt == "directory"
            else TarGzStore(final, mtime=int(moment.timestamp()), compress_level=compress_level)
        )
    except OSError as exc:
        raise ArchiveError(f"cannot create an archive next to {final}: {exc.strerror}") from None
    return ArchiveWriter(
        store,
        source=source,
        filters=filters or {},
        created_at=moment,
        overwrite=overwrite,
        encryption=encryption,
    )
