"""Reading an archive: a validated manifest, then objects that are each checked against it.

    with open_archive("backup.tar.gz", decrypter=AgeDecrypter.from_identity_file(key)) as archive:
        for entry, obj in archive.iter_objects():
            ...

The reader stops at the first thing it cannot trust and raises ArchiveError (an
`ArchiveProblemError`, whose `.problem` says what and where). It reads only what the
manifest lists: files it does not list are never parsed or yielded (`verify` reports
them), but an unsafe member (link, device, `..`) anywhere in a .tar.gz is still refused.
For a .tar.gz, objects come in the order they are stored and a file missing from the
archive is only noticed at the end of the iteration; callers that must not act on a
partial archive run `verify` first.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from kubectl_state.core.archive.layout import MANIFEST_NAME
from kubectl_state.core.archive.limits import DEFAULT_LIMITS, ReadLimits
from kubectl_state.core.archive.manifest import Manifest, ObjectEntry, ResourceEntry, decode_manifest
from kubectl_state.core.archive.objects import parse_checked
from kubectl_state.core.archive.problems import ArchiveProblemError, ProblemKind
from kubectl_state.core.archive.secrets import SecretDecrypter, decrypt_secret, encryption_marker, is_secret
from kubectl_state.core.archive.sources import ArchiveSource, DirectorySource, TarGzSource, open_source
from kubectl_state.core.archive.stores import ArchiveFormat
from kubectl_state.core.errors import ArchiveError


class ArchiveReader:
    def __init__(
        self, source: ArchiveSource, manifest: Manifest, decrypter: SecretDecrypter | None, *, manifest_bytes: int = 0
    ) -> None:
        self._source = source
        self.manifest = manifest
        #: Size of manifest.json.
        self.manifest_bytes = manifest_bytes
        self._decrypter = decrypter
        self._resources = manifest.resource_index()

    @property
    def path(self) -> Path:
        return self._source.path

    @property
    def format(self) -> ArchiveFormat:
        return self._source.format

    @property
    def size_on_disk(self) -> int | None:
        """The .tar.gz file's size; None for a directory (it would take a walk to know)."""
        return self._source.size_on_disk()

    @property
    def limits(self) -> ReadLimits:
        return self._source.limits

    @property
    def needs_decrypter(self) -> bool:
        """True if the archive holds encrypted Secrets and no decrypter was given, in which
        case iter_objects() refuses to start: better than failing halfway through an import."""
        if self.manifest.secrets_encryption is None or self._decrypter is not None:
            return False
        return any(entry.group == "" and entry.resource == "secrets" for entry in self.manifest.objects)

    def resource_of(self, entry: ObjectEntry) -> ResourceEntry | None:
        return self._resources.get((entry.group, entry.resource))

    def iter_objects(self, *, decrypt_secrets: bool = True) -> Iterator[tuple[ObjectEntry, dict[str, Any]]]:
        """Each object with its manifest entry, checked (size, sha256, safe YAML, identity)
        before it is yielded. With `decrypt_secrets=False`, encrypted Secrets come back as
        stored."""
        if isinstance(self._source, DirectorySource):
            objects = self._iter_directory(self._source)
        else:
            objects = self._iter_tar(self._source)
        if decrypt_secrets and self.needs_decrypter:
            encryption = self.manifest.secrets_encryption
            scheme = encryption.scheme if encryption is not None else ""
            raise ArchiveProblemError(
                ProblemKind.DECRYPTION_FAILED,
                "",
                f"the archive's Secrets are encrypted with {scheme}; an {scheme} identity is needed to read them",
            )
        for entry, obj in objects:
            yield entry, secret_as_read(self.manifest, entry, obj, self._decrypter if decrypt_secrets else None)

    def check_structure(self) -> None:
        """Refuse what is wrong with the archive's shape without reading any object's bytes:
        links, devices, FIFOs and paths that leave the archive, duplicate members, and listed
        files that are missing or whose size is not the declared one. For `inspect`, which
        summarises the manifest and must not vouch for an archive the reader would refuse
        on sight; what is inside the object files is left to `verify` and the reader."""
        if isinstance(self._source, DirectorySource):
            self._check_directory(self._source)
        else:
            self._check_tar(self._source)

    def _check_directory(self, source: DirectorySource) -> None:
        for _, problem in source.walk():
            if problem is not None:
                raise ArchiveProblemError(problem.kind, problem.path, problem.message)
        for entry in self.manifest.objects:
            size = source.file_size(entry.path)
            if size != entry.size:
                raise size_differs(entry, size)

    def _check_tar(self, source: TarGzSource) -> None:
        expected = {entry.path: entry for entry in self.manifest.objects}
        seen: set[str] = set()
        with contextlib.closing(source.scan()) as members:
            for member, read in members:
                if member.problem is not None:
                    raise ArchiveProblemError(member.problem.kind, member.problem.path, member.problem.message)
                if member.name == MANIFEST_NAME and not member.is_dir:
                    if hashlib.sha256(read(self.limits.max_manifest_bytes)).hexdigest() != source.manifest_sha256:
                        raise ArchiveProblemError(
                            ProblemKind.INCONSISTENT, MANIFEST_NAME, "the archive changed while it was being read"
                        )
                    continue
                entry = expected.get(member.name)
                if entry is None or member.is_dir:
                    continue
                if member.size != entry.size:
                    raise size_differs(entry, member.size)
                seen.add(entry.path)
        missing = [path for path in expected if path not in seen]
        if missing:
            more = f" (and {len(missing) - 1} more files)" if len(missing) > 1 else ""
            raise ArchiveProblemError(ProblemKind.MISSING_FILE, missing[0], f"the file is missing{more}")

    def _cap(self, entry: ObjectEntry) -> int:
        if entry.size > self.limits.max_object_bytes:
            raise ArchiveProblemError(
                ProblemKind.TOO_LARGE,
                entry.path,
                f"the manifest declares {entry.size} bytes, more than the limit of {self.limits.max_object_bytes}",
            )
        return entry.size

    def _iter_directory(self, source: DirectorySource) -> Iterator[tuple[ObjectEntry, dict[str, Any]]]:
        for entry in self.manifest.objects:
            cap = self._cap(entry)
            try:
                data = source.read_file(entry.path, cap)
            except ArchiveProblemError as exc:
                if exc.problem.kind is ProblemKind.TOO_LARGE:
                    raise larger_than_declared(entry, None) from None
                raise
            yield entry, parse_checked(entry, data, self.resource_of(entry), self.limits)

    def _iter_tar(self, source: TarGzSource) -> Iterator[tuple[ObjectEntry, dict[str, Any]]]:
        expected = {entry.path: entry for entry in self.manifest.objects}
        seen: set[str] = set()
        for member, read in source.scan():
            if member.problem is not None:
                raise ArchiveProblemError(member.problem.kind, member.problem.path, member.problem.message)
            if member.is_dir:
                continue
            if member.name == MANIFEST_NAME:
                data = read(self.limits.max_manifest_bytes)
                if hashlib.sha256(data).hexdigest() != source.manifest_sha256:
                    raise ArchiveProblemError(
                        ProblemKind.INCONSISTENT, MANIFEST_NAME, "the archive changed while it was being read"
                    )
                continue
            entry = expected.get(member.name)
            if entry is None:
                continue  # never read, never yielded; verify reports it
            if member.size > entry.size:
                raise larger_than_declared(entry, member.size)
            data = read(self._cap(entry))
            seen.add(entry.path)
            yield entry, parse_checked(entry, data, self.resource_of(entry), self.limits)
        missing = [path for path in expected if path not in seen]
        if missing:
            more = f" (and {len(missing) - 1} more files)" if len(missing) > 1 else ""
            raise ArchiveProblemError(ProblemKind.MISSING_FILE, missing[0], f"the file is missing{more}")

    def close(self) -> None:
        self._source.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def secret_as_read(
    manifest: Manifest, entry: ObjectEntry, obj: dict[str, Any], decrypter: SecretDecrypter | None
) -> dict[str, Any]:
    """`obj` as the caller should see it: a Secret in an archive with encrypted Secrets must
    carry the encryption marker (else ENCRYPTION_MISMATCH: it was stored in plaintext or
    tampered with), and is decrypted when a `decrypter` is given."""
    encryption = manifest.secrets_encryption
    if encryption is None or not is_secret(obj):
        return obj
    if encryption_marker(obj) != encryption.scheme:
        raise ArchiveProblemError(
            ProblemKind.ENCRYPTION_MISMATCH,
            entry.path,
            f"the manifest says Secrets are encrypted with {encryption.scheme} but this one is not",
        )
    if decrypter is None:
        return obj
    try:
        return decrypt_secret(obj, decrypter)
    except ArchiveError as exc:
        raise ArchiveProblemError(ProblemKind.DECRYPTION_FAILED, entry.path, exc.message) from None


def larger_than_declared(entry: ObjectEntry, size: int | None) -> ArchiveProblemError:
    actual = f"{size} bytes, " if size is not None else ""
    return ArchiveProblemError(
        ProblemKind.SIZE_MISMATCH,
        entry.path,
        f"the file is {actual}larger than the {entry.size} bytes the manifest declares",
    )


def size_differs(entry: ObjectEntry, size: int) -> ArchiveProblemError:
    what = "larger" if size > entry.size else "smaller"
    return ArchiveProblemError(
        ProblemKind.SIZE_MISMATCH,
        entry.path,
        f"the file is {size} bytes, {what} than the {entry.size} bytes the manifest declares",
    )


def open_archive(
    path: str | os.PathLike[str],
    *,
    decrypter: SecretDecrypter | None = None,
    limits: ReadLimits = DEFAULT_LIMITS,
) -> ArchiveReader:
    """Open a directory or .tar.gz archive and validate its manifest (format version,
    schema, consistency). Raises ArchiveError if the manifest cannot be trusted."""
    source = open_source(path, limits)
    try:
        data = source.read_manifest()
        manifest = decode_manifest(data)
    except BaseException:
        source.close()
        raise
    return ArchiveReader(source, manifest, decrypter, manifest_bytes=len(data))
