"""Reading a .tar.gz archive as a forward-only stream of checked members.

Nothing is extracted to disk. The decompressed stream passes through a budget that bounds
the total (gzip bombs) and what tarfile may read between two members (it reads pax and GNU
long-name headers into memory whole, trusting their declared size). Every member is
classified before anyone reads it: links, devices, FIFOs, sparse files, absolute names, `..`
and duplicates come back as problems, never as data.
"""

from __future__ import annotations

import gzip
import tarfile
import zlib
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import IO, Protocol

from kubectl_state.core.archive.layout import normalize_member_name, unsafe_path_reason
from kubectl_state.core.archive.limits import ReadLimits
from kubectl_state.core.archive.problems import ArchiveProblemError, Problem, ProblemKind

_BUFSIZE = tarfile.RECORDSIZE
# tarfile pulls whole buffers from us, so it may be up to one buffer ahead of what it used.
_SLACK = 2 * _BUFSIZE
# What decompression, gzip framing and tarfile raise on corrupt input.
_STREAM_ERRORS = (tarfile.TarError, OSError, EOFError, zlib.error, ValueError)

GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True, slots=True)
class TarMember:
    #: Archive-relative path ("./" prefix and trailing "/" removed); "." for the root.
    name: str
    size: int
    is_dir: bool
    #: Why this member must not be used; its data is never offered for reading then.
    problem: Problem | None


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class _Budget:
    """The decompressed stream as tarfile sees it, with two limits on what it may take."""

    def __init__(self, raw: _Readable, total_limit: int, header_limit: int) -> None:
        self._raw = raw
        self._total = 0
        self._total_limit = total_limit
        self._header_limit = header_limit
        self._window = 0

    def allow(self, nbytes: int) -> None:
        """tarfile may now read `nbytes` (plus its read-ahead) before the next call."""
        self._window = nbytes + _SLACK

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size if size >= 0 else _BUFSIZE)
        self._total += len(data)
        self._window -= len(data)
        if self._total > self._total_limit:
            raise ArchiveProblemError(
                ProblemKind.TOO_LARGE,
                "",
                f"the archive decompresses to more than {self._total_limit} bytes; refusing it (a gzip bomb?)",
            )
        if self._window < 0:
            raise ArchiveProblemError(
                ProblemKind.TOO_LARGE, "", f"a tar header is larger than {self._header_limit} bytes; refusing it"
            )
        return data


def _padded(size: int) -> int:
    return -(-size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE


_UNSAFE_TYPES: tuple[tuple[Callable[[tarfile.TarInfo], bool], str], ...] = (
    (tarfile.TarInfo.issym, "it is a symbolic link"),
    (tarfile.TarInfo.islnk, "it is a hard link"),
    (lambda info: info.ischr() or info.isblk(), "it is a device file"),
    (tarfile.TarInfo.isfifo, "it is a FIFO"),
    (tarfile.TarInfo.issparse, "it is a sparse file"),
)


def _member_problem(info: tarfile.TarInfo, name: str, seen: set[str]) -> Problem | None:  # noqa: PLR0911 - one per refusal
    def refuse(kind: ProblemKind, reason: str) -> Problem:
        return Problem(kind, name, f"refusing tar member: {reason}")

    try:
        info.name.encode("utf-8")
    except UnicodeEncodeError:
        return refuse(ProblemKind.UNSAFE_MEMBER, "its name is not valid UTF-8")
    if info.isdir() and name == ".":
        return None
    reason = unsafe_path_reason(name)
    if reason is not None:
        return refuse(ProblemKind.PATH_OUTSIDE_ARCHIVE, reason)
    # Checked in this order because isreg() is also true of sparse files.
    for unsafe, why in _UNSAFE_TYPES:
        if unsafe(info):
            return refuse(ProblemKind.UNSAFE_MEMBER, why)
    if info.isdir():
        return None
    if not info.isreg():
        return refuse(ProblemKind.UNSAFE_MEMBER, f"it has unsupported type {info.type!r}")
    if name in seen:
        return refuse(ProblemKind.DUPLICATE, "the archive holds this name more than once")
    return None


def scan(
    file: IO[bytes], limits: ReadLimits, compressed_size: int
) -> Generator[tuple[TarMember, Callable[[int], bytes]]]:
    """One pass over the archive from its first byte: each member, and a function that
    reads its data (at most `cap` bytes; only until the iteration moves on).

    Raises ArchiveError when the stream itself is unreadable or over a limit; problems with
    single members are reported in `TarMember.problem` so that `verify` can go on.
    """
    file.seek(0)
    budget = _Budget(
        gzip.GzipFile(fileobj=file, mode="rb", filename=""),
        limits.decompressed_limit(compressed_size),
        limits.max_tar_header_bytes,
    )
    seen: set[str] = set()
    try:
        budget.allow(limits.max_tar_header_bytes)
        # Not a with block: the TarFile lives as long as this generator, which may be
        # abandoned mid-way; it owns nothing that needs closing (the file is the caller's).
        # (typeshed wants a writable file object even for reading.)
        tar: tarfile.TarFile = tarfile.open(  # type: ignore[call-overload]  # noqa: SIM115
            fileobj=budget, mode="r|", bufsize=_BUFSIZE
        )
        while True:
            info = tar.next()
            if info is None:
                return
            # In stream mode tarfile still appends every member to a list; keep memory flat.
            tar.members.clear()  # type: ignore[attr-defined]  # (not in typeshed, but a plain list)
            name = normalize_member_name(info.name)
            member = TarMember(name, info.size, info.isdir(), _member_problem(info, name, seen))
            if not member.is_dir:
                seen.add(name)
            budget.allow(_padded(max(info.size, 0)) + limits.max_tar_header_bytes)
            yield member, _reader(tar, info, member)
    except ArchiveProblemError:
        raise
    except _STREAM_ERRORS as exc:
        raise ArchiveProblemError(
            ProblemKind.UNREADABLE, "", f"the archive is not a readable .tar.gz: {_describe(exc)}"
        ) from None


def _reader(tar: tarfile.TarFile, info: tarfile.TarInfo, member: TarMember) -> Callable[[int], bytes]:
    def read(cap: int) -> bytes:
        if member.problem is not None or member.is_dir:
            raise ArchiveProblemError(ProblemKind.UNSAFE_MEMBER, member.name, "this member cannot be read")
        if info.size > cap:
            raise ArchiveProblemError(
                ProblemKind.TOO_LARGE, member.name, f"the member is {info.size} bytes, more than the limit of {cap}"
            )
        try:
            handle = tar.extractfile(info)
            data = handle.read(info.size) if handle is not None else b""
        except ArchiveProblemError:
            raise
        except _STREAM_ERRORS as exc:
            raise ArchiveProblemError(
                ProblemKind.UNREADABLE, member.name, f"cannot read the member: {_describe(exc)}"
            ) from None
        if len(data) != info.size:
            raise ArchiveProblemError(ProblemKind.UNREADABLE, member.name, "the member is truncated")
        return data

    return read


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
    return text or type(exc).__name__
