"""The two physical forms of an archive behind one small interface for reader and verify.

A directory is read through a directory fd with every path component opened O_NOFOLLOW; a
.tar.gz through one open file, streamed from the start for each pass (the writer puts the
manifest last, so the reader needs one pass to find it and one to check the objects).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import IO

from kubectl_state.core.archive import tarstream
from kubectl_state.core.archive.fsutil import describe_mode, open_beneath, read_capped
from kubectl_state.core.archive.layout import MANIFEST_NAME
from kubectl_state.core.archive.limits import ReadLimits
from kubectl_state.core.archive.problems import ArchiveProblemError, Problem, ProblemKind
from kubectl_state.core.archive.stores import ArchiveFormat


class DirectorySource:
    format: ArchiveFormat = "directory"

    def __init__(self, path: Path, limits: ReadLimits) -> None:
        self.path = path
        self.limits = limits
        self._fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)

    def read_file(self, relpath: str, cap: int) -> bytes:
        fd = open_beneath(self._fd, relpath)
        try:
            return read_capped(fd, cap, relpath)
        finally:
            os.close(fd)

    def file_size(self, relpath: str) -> int:
        """The size of the regular file `relpath`, opened as `read_file` would open it
        (so a link or device is refused the same way) but not read."""
        fd = open_beneath(self._fd, relpath)
        try:
            return os.fstat(fd).st_size
        finally:
            os.close(fd)

    def read_manifest(self) -> bytes:
        try:
            return self.read_file(MANIFEST_NAME, self.limits.max_manifest_bytes)
        except ArchiveProblemError as exc:
            if exc.problem.kind is ProblemKind.MISSING_FILE:
                raise ArchiveProblemError(
                    ProblemKind.MANIFEST_MISSING, MANIFEST_NAME, "the archive has no manifest.json"
                ) from None
            raise

    def walk(self) -> Iterator[tuple[str, Problem | None]]:
        """Every entry that is not a directory, with a problem if it is not a regular file.
        Symlinked directories are reported, never followed."""
        stack = [""]
        while stack:
            prefix = stack.pop()
            try:
                entries = sorted(os.scandir(self.path / prefix if prefix else self.path), key=lambda e: e.name)
            except OSError as exc:
                yield prefix, Problem(ProblemKind.UNREADABLE, prefix, f"cannot list the directory: {exc.strerror}")
                continue
            for entry in entries:
                relpath = f"{prefix}/{entry.name}" if prefix else entry.name
                try:
                    mode = entry.stat(follow_symlinks=False).st_mode
                except OSError as exc:  # removed or unreadable since it was listed
                    yield relpath, Problem(ProblemKind.UNREADABLE, relpath, f"cannot stat: {exc.strerror}")
                    continue
                if stat.S_ISDIR(mode):
                    stack.append(relpath)
                elif stat.S_ISREG(mode):
                    yield relpath, None
                else:
                    yield relpath, Problem(ProblemKind.UNSAFE_MEMBER, relpath, f"refusing {describe_mode(mode)}")

    def size_on_disk(self) -> int | None:
        return None

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class TarGzSource:
    format: ArchiveFormat = "tar.gz"

    def __init__(self, path: Path, limits: ReadLimits) -> None:
        self.path = path
        self.limits = limits
        # One open file for every pass, so that both passes read the same file even if the
        # name is replaced in between.
        self._file: IO[bytes] = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._size = os.fstat(self._file.fileno()).st_size
        self.manifest_sha256: str | None = None

    def scan(self) -> Generator[tuple[tarstream.TarMember, Callable[[int], bytes]]]:
        return tarstream.scan(self._file, self.limits, self._size)

    def read_manifest(self, *, strict: bool = True) -> bytes:
        """Pass one: stream up to manifest.json. With `strict`, the first unsafe member on
        the way (or one larger than any object may be) is refused; otherwise skipped, for
        verify, which reports members in its second pass."""
        with contextlib.closing(self.scan()) as members:
            return self._find_manifest(members, strict)

    def _find_manifest(
        self, members: Iterator[tuple[tarstream.TarMember, Callable[[int], bytes]]], strict: bool
    ) -> bytes:
        for member, read in members:
            if member.problem is not None:
                if strict:
                    raise ArchiveProblemError(member.problem.kind, member.problem.path, member.problem.message)
                continue
            if member.is_dir:
                continue
            if member.name == MANIFEST_NAME:
                data = read(self.limits.max_manifest_bytes)
                self.manifest_sha256 = hashlib.sha256(data).hexdigest()
                return data
            if strict and member.size > self.limits.max_object_bytes:
                # Refused from its header alone: no need to decompress it to know.
                raise ArchiveProblemError(
                    ProblemKind.TOO_LARGE,
                    member.name,
                    f"the member declares {member.size} bytes, more than the limit of {self.limits.max_object_bytes}",
                )
        raise ArchiveProblemError(ProblemKind.MANIFEST_MISSING, MANIFEST_NAME, "the archive has no manifest.json")

    def size_on_disk(self) -> int | None:
        return self._size

    def close(self) -> None:
        self._file.close()


ArchiveSource = DirectorySource | TarGzSource


def open_source(path: str | os.PathLike[str], limits: ReadLimits) -> ArchiveSource:
    """The archive at `path`, as a directory or a gzip file (recognised by content)."""
    location = Path(os.path.abspath(path))
    try:
        info = os.stat(location)
    except OSError as exc:
        raise ArchiveProblemError(ProblemKind.UNREADABLE, "", f"cannot open {location}: {exc.strerror}") from None
    try:
        if stat.S_ISDIR(info.st_mode):
            return DirectorySource(location, limits)
        if stat.S_ISREG(info.st_mode):
            with open(location, "rb") as handle:
                magic = handle.read(2)
            if magic == tarstream.GZIP_MAGIC:
                return TarGzSource(location, limits)
            raise ArchiveProblemError(
                ProblemKind.UNREADABLE, "", f"{location} is neither a directory nor a .tar.gz archive"
            )
    except OSError as exc:
        raise ArchiveProblemError(ProblemKind.UNREADABLE, "", f"cannot open {location}: {exc.strerror}") from None
    raise ArchiveProblemError(ProblemKind.UNREADABLE, "", f"{location} is neither a directory nor a .tar.gz archive")
