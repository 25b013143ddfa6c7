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

import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self

from kubectl_state.core.archive.layout import object_path, resource_key
from kubectl_state.core.archive.manifest import (
    Manifest,
    ObjectEntry,
    ResourceEntry,
    SecretsEncryption,
    Source,
    encode_manifest,
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


class ArchiveWriter:
    """Builds one archive. Thread-safe: exporters may add objects from several threads."""

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
        self._paths: set[str] = set()
        self._entries: list[ObjectEntry] = []
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
        with self._lock:
            self._check_open()
            if path in self._paths:
                raise ArchiveError(f"{path} was already written; an object can be stored only once")
            self._listed_locked(group, version, resource, kind, namespaced)
            self._paths.add(path)
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
                self._in_flight -= 1
                if stored:
                    self._entries.append(entry)
                    self._listed[(group, resource)].count += 1
                self._idle.notify_all()
        return entry

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
            objects=tuple(sorted(self._entries, key=lambda e: e.path)),
            secrets_encryption=(
                None if encryption is None else SecretsEncryption(encryption.scheme, tuple(encryption.recipients))
            ),
        )

    def commit(self) -> Manifest:
        """Write the manifest, make everything durable and publish the archive at PATH."""
        with self._lock:
            self._check_open()
            self._state = "committing"
            # A file still being written by another thread must be in the manifest, and
            # must not land in the directory after it was published.
            self._idle.wait_for(lambda: self._in_flight == 0)
            manifest = self._manifest_locked()
        try:
            self._store.finish(encode_manifest(manifest))
            self._store.publish(self._overwrite)
        except OSError as exc:
            self.abort()
            raise ArchiveError(f"cannot write {self.path}: {exc.strerror or exc}") from exc
        except BaseException:
            self.abort()
            raise
        self._state = "committed"
        return manifest

    def abort(self) -> None:
        """Discard everything written so far. Safe to call more than once."""
        if self._state in ("committed", "aborted"):
            return
        self._state = "aborted"
        self._store.abort()

    def close(self) -> None:
        """Like abort() unless the archive was committed."""
        self.abort()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def open_archive_writer(
    path: str | os.PathLike[str],
    *,
    source: Source,
    filters: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    encryption: SecretEncrypter | None = None,
    created_at: datetime | None = None,
    compress_level: int = 6,
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
