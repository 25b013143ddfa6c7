"""Where a writer puts bytes: a directory or a .tar.gz, both built under a hidden temporary
name and published under the final name only once complete.

An interrupted export therefore never leaves anything at PATH; at worst a hidden
`.<name>.partial-<random>` next to it (only if the process is killed outright).
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import os
import stat
import tarfile
import threading
from pathlib import Path
from typing import IO, Literal, Protocol

from kubectl_state.core.archive.fsutil import (
    DIR_MODE,
    FILE_MODE,
    create_private_file,
    fsync_dir,
    make_private_dir,
    remove_quietly,
    temp_sibling,
    write_all,
    write_private_file,
)
from kubectl_state.core.archive.layout import MANIFEST_NAME
from kubectl_state.core.errors import ArchiveError

ArchiveFormat = Literal["directory", "tar.gz"]
_TAR_SUFFIXES = (".tar.gz", ".tgz")
#: Bytes read at a time from a file being copied into the archive.
_CHUNK = 1024 * 1024


def format_for_path(path: str | os.PathLike[str]) -> ArchiveFormat:
    """A path ending in .tar.gz (or .tgz) is written as one compressed file, anything else
    as a directory."""
    return "tar.gz" if os.fspath(path).endswith(_TAR_SUFFIXES) else "directory"


class Store(Protocol):
    final: Path

    def add(self, relpath: str, data: bytes) -> None:
        """Store one file. Thread-safe; each relpath is added at most once."""

    def finish(self, manifest: bytes | IO[bytes]) -> None:
        """Write the manifest last and make everything durable, still under the temporary name.
        `manifest` is its bytes, or a binary file positioned at its start (read to the end)."""

    def publish(self, overwrite: bool) -> None:
        """Make the finished archive appear at `final`."""

    def abort(self) -> None:
        """Remove everything written so far. Never raises."""


def _describe_existing(path: Path) -> str | None:
    """None if nothing is at `path`, else what is there."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(info.st_mode):
        return "a symbolic link"
    if stat.S_ISDIR(info.st_mode):
        return "an empty directory" if not any(os.scandir(path)) else "a non-empty directory"
    if stat.S_ISREG(info.st_mode):
        return "an empty file" if info.st_size == 0 else "a file"
    return "a special file"


def check_target(final: Path, fmt: ArchiveFormat, overwrite: bool) -> None:
    """Refuse to write where a finished archive would replace something it should not."""
    if not final.parent.is_dir():
        raise ArchiveError(f"cannot write {final}: directory {final.parent} does not exist")
    existing = _describe_existing(final)
    free = "an empty directory" if fmt == "directory" else "an empty file"
    if existing is None or existing == free:
        return
    if not overwrite:
        raise ArchiveError(f"{final} already exists ({existing}); refusing to overwrite it")
    if existing == "a non-empty directory" and not (final / MANIFEST_NAME).is_file():
        # overwrite means "replace an old backup", never "delete whatever directory was named".
        raise ArchiveError(f"{final} is a directory that is not a kubectl-state archive; refusing to replace it")
    if existing == "a special file":
        raise ArchiveError(f"{final} is a special file; refusing to replace it")


def _publish(temp: Path, final: Path, fmt: ArchiveFormat, overwrite: bool) -> None:
    check_target(final, fmt, overwrite)  # again: something may have appeared while we wrote
    existing = _describe_existing(final)
    try:
        if existing in (None, "an empty directory") and fmt == "directory":
            # rename(2) replaces an empty directory and fails on a non-empty one, so a
            # directory that appeared meanwhile is never clobbered.
            os.rename(temp, final)
        elif existing is None:
            _link_no_clobber(temp, final)
        elif existing in ("a file", "an empty file", "a symbolic link") and fmt == "tar.gz":
            os.replace(temp, final)  # atomic: readers see the old file or the new one
        else:
            # Replacing a directory (or a file by a directory) cannot be one rename: move the
            # old one aside, put the new one in place, then delete the old one.
            aside = temp_sibling(final, "old")
            os.rename(final, aside)
            os.rename(temp, final)
            remove_quietly(aside)
    except OSError as exc:
        raise ArchiveError(f"cannot move the finished archive to {final}: {exc.strerror}") from None
    fsync_dir(final.parent)


def _link_no_clobber(temp: Path, final: Path) -> None:
    try:
        os.link(temp, final)
    except FileExistsError:
        raise ArchiveError(f"{final} appeared while the archive was written; refusing to overwrite it") from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
            raise
        # File systems without hard links: a tiny window in which a file created at
        # `final` by someone else would be replaced.
        if os.path.lexists(final):
            raise ArchiveError(f"{final} appeared while the archive was written; refusing to overwrite it") from None
        os.replace(temp, final)
        return
    os.unlink(temp)


class DirectoryStore:
    def __init__(self, final: Path) -> None:
        self.final = final
        self.temp = temp_sibling(final)
        make_private_dir(self.temp)
        self._dirs: set[str] = {""}
        self._lock = threading.Lock()

    def _ensure_dirs(self, relpath: str) -> None:
        parts = relpath.split("/")[:-1]
        with self._lock:
            for depth in range(1, len(parts) + 1):
                sub = "/".join(parts[:depth])
                if sub not in self._dirs:
                    make_private_dir(self.temp / sub)
                    self._dirs.add(sub)

    def add(self, relpath: str, data: bytes) -> None:
        self._ensure_dirs(relpath)
        # Written and fsynced outside the lock: concurrent exporters overlap their fsyncs.
        try:
            write_private_file(self.temp / relpath, data)
        except BaseException:
            # The writer does not list a file it failed to write; it must not be published.
            remove_quietly(self.temp / relpath)
            raise

    def finish(self, manifest: bytes | IO[bytes]) -> None:
        if isinstance(manifest, bytes):
            write_private_file(self.temp / MANIFEST_NAME, manifest)
        else:
            fd = create_private_file(self.temp / MANIFEST_NAME)
            try:
                while chunk := manifest.read(_CHUNK):
                    write_all(fd, chunk)
                os.fsync(fd)
            finally:
                os.close(fd)
        for sub in sorted(self._dirs, key=len, reverse=True):
            fsync_dir(self.temp / sub if sub else self.temp)

    def publish(self, overwrite: bool) -> None:
        _publish(self.temp, self.final, "directory", overwrite)

    def abort(self) -> None:
        remove_quietly(self.temp)


class TarGzStore:
    """A gzip-compressed tar written strictly in order, one member at a time: nothing but the
    current member (and a small write buffer) is ever held in memory, and the manifest is the
    last member.

    Members are framed here rather than by `tarfile.addfile`, whose per-member bookkeeping
    (a TarInfo copy, a file object around the bytes, a list of every member) costs more than
    compressing a typical object; the bytes are the same as tarfile's PAX_FORMAT output.
    """

    #: Compressed in batches of this size: one zlib call per object file costs more than it saves.
    _BUFFER = 256 * 1024

    def __init__(self, final: Path, *, mtime: int, compress_level: int) -> None:
        self.final = final
        self.temp = temp_sibling(final)
        self._mtime = mtime
        self._lock = threading.Lock()
        self._dirs: set[str] = set()
        self._broken = False
        self._offset = 0  # bytes of tar written so far, for the end-of-archive padding
        self._pending = bytearray()
        self._header = _UstarHeader(mtime)
        self._file: IO[bytes] = os.fdopen(create_private_file(self.temp), "wb")
        try:
            # filename="" keeps the temporary name out of the gzip header; a fixed mtime
            # makes two exports of the same objects byte-identical.
            # Closed in finish() or abort(), not by a with block: it lives across calls.
            self._gzip = gzip.GzipFile(
                filename="", mode="wb", fileobj=self._file, compresslevel=compress_level, mtime=mtime
            )
        except BaseException:
            self._file.close()
            remove_quietly(self.temp)
            raise

    def _info(self, name: str, *, size: int = 0, directory: bool = False) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.size = size
        info.mtime = self._mtime
        info.mode = DIR_MODE if directory else FILE_MODE
        info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info

    def _write(self, chunk: bytes) -> None:
        self._pending += chunk
        self._offset += len(chunk)
        if len(self._pending) >= self._BUFFER:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._gzip.write(self._pending)
            self._pending.clear()

    def _add_locked(self, relpath: str, data: bytes) -> None:
        # Directory members let `tar -x` recreate the 0700 directories of the layout.
        parts = relpath.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            sub = "/".join(parts[:depth])
            if sub not in self._dirs:
                self._write(self._info(sub, directory=True).tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
                self._dirs.add(sub)
        header = self._header.regular(relpath, len(data))
        if header is None:  # a name ustar cannot hold: tarfile adds a pax header for it
            header = self._info(relpath, size=len(data)).tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
        padding = tarfile.NUL * (-len(data) % tarfile.BLOCKSIZE)
        if len(data) < self._BUFFER:
            self._write(header + data + padding)
        else:  # a large member goes to gzip as it is rather than copied into the buffer
            self._write(header)
            self._flush()
            self._gzip.write(data)
            self._offset += len(data)
            self._write(padding)

    def _add_checked(self, relpath: str, data: bytes) -> None:
        # A member that failed halfway leaves the stream unusable for any later member.
        if self._broken:
            raise ArchiveError(f"cannot add {relpath}: writing the archive failed earlier")
        try:
            self._add_locked(relpath, data)
        except BaseException:
            self._broken = True
            raise

    def _add_stream_checked(self, relpath: str, stream: IO[bytes]) -> None:
        """A member from a file (the manifest of a large export), read in chunks."""
        if self._broken:
            raise ArchiveError(f"cannot add {relpath}: writing the archive failed earlier")
        try:
            start = stream.tell()
            size = stream.seek(0, os.SEEK_END) - start
            stream.seek(start)
            header = self._header.regular(relpath, size)
            if header is None:
                header = self._info(relpath, size=size).tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
            self._write(header)
            self._flush()
            copied = 0
            while chunk := stream.read(_CHUNK):
                self._gzip.write(chunk)
                copied += len(chunk)
            if copied != size:
                raise ArchiveError(f"{relpath} changed size while it was added ({size} -> {copied} bytes)")
            self._offset += size
            self._write(tarfile.NUL * (-size % tarfile.BLOCKSIZE))
        except BaseException:
            self._broken = True
            raise

    def add(self, relpath: str, data: bytes) -> None:
        with self._lock:
            self._add_checked(relpath, data)

    def finish(self, manifest: bytes | IO[bytes]) -> None:
        with self._lock:
            if isinstance(manifest, bytes):
                self._add_checked(MANIFEST_NAME, manifest)
            else:
                self._add_stream_checked(MANIFEST_NAME, manifest)
            # The end of a tar: two zero blocks, then zeros up to a whole record, as tarfile does.
            self._write(tarfile.NUL * (2 * tarfile.BLOCKSIZE))
            self._write(tarfile.NUL * (-self._offset % tarfile.RECORDSIZE))
            self._flush()
            self._gzip.close()
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()

    def publish(self, overwrite: bool) -> None:
        _publish(self.temp, self.final, "tar.gz", overwrite)

    def abort(self) -> None:
        self._pending.clear()
        for closable in (self._gzip, self._file):
            # The stream is being thrown away; a failure to write its trailer does not matter.
            with contextlib.suppress(OSError, ValueError):
                closable.close()
        remove_quietly(self.temp)


class _UstarHeader:
    """The 512-byte header tarfile writes for a regular 0600 file owned by 0:0 with a fixed
    mtime, in PAX_FORMAT when no pax record is needed (an ASCII name of at most 100 bytes)."""

    def __init__(self, mtime: int) -> None:
        template = tarfile.TarInfo("x")
        template.mode, template.mtime, template.type = FILE_MODE, mtime, tarfile.REGTYPE
        template.uid = template.gid = 0
        template.uname = template.gname = ""
        block = template.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
        if len(block) != tarfile.BLOCKSIZE or (mtime < 0 or mtime >= 8**11):
            raise ArchiveError(f"cannot write tar headers with mtime {mtime}")
        # Name (100) | mode, uid, gid (24) | size (12) | mtime (12) | checksum (8) | the rest (356).
        self._ids = block[100:124]
        self._mtime = block[136:148]
        self._rest = block[156:]
        # The checksum is the sum of every header byte, its own field counted as spaces.
        self._fixed_sum = sum(self._ids) + sum(self._mtime) + 8 * ord(" ") + sum(self._rest)

    def regular(self, name: str, size: int) -> bytes | None:
        """The header for `name` of `size` bytes, or None when it needs what only tarfile does."""
        if len(name) > 100 or not name.isascii() or size >= 8**11:
            return None
        raw_name = name.encode("ascii").ljust(100, b"\0")
        raw_size = b"%011o\0" % size
        checksum = sum(raw_name) + sum(raw_size) + self._fixed_sum
        return b"".join((raw_name, self._ids, raw_size, self._mtime, b"%06o\0 " % checksum, self._rest))
