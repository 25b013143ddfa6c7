"""What can be wrong with an archive, as data.

The reader stops at the first problem and raises it; `verify` collects them all. Both use the
same vocabulary so that `kubectl state verify -o json` and the reader's error messages name
problems the same way.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from kubectl_state.core.errors import ArchiveError


class ProblemKind(enum.StrEnum):
    """Short, stable codes for machine-readable reports."""

    #: The archive cannot be read at all (not a directory, not gzip, corrupt tar stream).
    UNREADABLE = "unreadable"
    MANIFEST_MISSING = "manifest-missing"
    MANIFEST_INVALID = "manifest-invalid"
    UNKNOWN_FORMAT_VERSION = "unknown-format-version"
    SCHEMA_INVALID = "schema-invalid"
    #: The manifest contradicts itself (counts, duplicate paths, unlisted resources).
    INCONSISTENT = "inconsistent"
    #: A manifest path, or a tar member name, that leaves the archive (`..`, absolute).
    PATH_OUTSIDE_ARCHIVE = "path-outside-archive"
    #: A manifest path that is safe but is not where the entry's object belongs.
    PATH_MISMATCH = "path-mismatch"
    #: A symlink, hard link, device, FIFO or other member that is not a plain file.
    UNSAFE_MEMBER = "unsafe-member"
    DUPLICATE = "duplicate"
    MISSING_FILE = "missing-file"
    STRAY_FILE = "stray-file"
    TOO_LARGE = "too-large"
    SIZE_MISMATCH = "size-mismatch"
    CHECKSUM_MISMATCH = "checksum-mismatch"
    #: An object file that is not valid UTF-8, not safe YAML, or not a single mapping.
    INVALID_OBJECT = "invalid-object"
    #: The object's apiVersion, kind, namespace or name do not match its path and entry.
    KIND_MISMATCH = "kind-mismatch"
    #: Secrets encryption markers that contradict the manifest (a plaintext Secret in an
    #: archive that says its Secrets are encrypted, or the other way round).
    ENCRYPTION_MISMATCH = "encryption-mismatch"
    #: An encrypted Secret that cannot be decrypted (no identity, wrong identity).
    DECRYPTION_FAILED = "decryption-failed"


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an archive: where (archive-relative path, or "" for the whole
    archive), what (`kind`) and a sentence for a person (`message`)."""

    kind: ProblemKind
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind.value, "path": self.path, "message": self.message}


class ArchiveProblemError(ArchiveError):
    """An `ArchiveError` that also carries the structured `Problem`, so `verify` can collect
    what the reader would have refused without parsing messages."""

    def __init__(self, kind: ProblemKind, path: str, message: str) -> None:
        self.problem = Problem(kind, path, message)
        super().__init__(str(self.problem))
