"""File-system primitives for archives: private modes, durable writes, confined reads.

Modes are set with chmod after creation because the mode given to open/mkdir is filtered
through the process umask; an archive holds Secrets and must be 0600/0700 regardless.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from pathlib import Path

from kubectl_state.core.archive.problems import ArchiveProblemError, ProblemKind

FILE_MODE = 0o600
DIR_MODE = 0o700
_READ_CHUNK = 1024 * 1024


def temp_sibling(final: Path, tag: str = "partial") -> Path:
    """A hidden name next to `final`: same file system (so rename is atomic), and a name
    nobody mistakes for a finished backup."""
    return final.parent / f".{final.name}.{tag}-{os.urandom(6).hex()}"


def make_private_dir(path: Path) -> None:
    os.mkdir(path, DIR_MODE)
    os.chmod(path, DIR_MODE)


def create_private_file(path: Path) -> int:
    """A new file (never an existing one, never through a symlink), mode 0600; returns its fd."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def write_private_file(path: Path, data: bytes) -> None:
    """Write `data` to a new 0600 file and fsync it before returning."""
    fd = create_private_file(path)
    try:
        write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Make the directory's entries (new files, a rename) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_quietly(path: Path) -> None:
    """Remove a file or a tree we created, ignoring what is already gone. Used on abort,
    where raising would hide the error that caused the abort."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    except OSError:
        pass


def open_beneath(root_fd: int, relpath: str) -> int:
    """Open the regular file `relpath` under the directory `root_fd` for reading.

    Each component is opened relative to its parent with O_NOFOLLOW, so no symlink, at any
    depth, can lead outside the archive; devices and FIFOs are refused before they are
    opened (opening a device can have side effects, opening a FIFO can block).
    `relpath` must already have passed `layout.unsafe_path_reason`.
    """
    *dirs, leaf = relpath.split("/")
    fd = root_fd
    try:
        for part in dirs:
            try:
                next_fd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            except OSError as exc:
                raise _open_problem(relpath, exc) from None
            if fd != root_fd:
                os.close(fd)
            fd = next_fd
        try:
            info = os.stat(leaf, dir_fd=fd, follow_symlinks=False)
        except OSError as exc:
            raise _open_problem(relpath, exc) from None
        _refuse_non_regular(relpath, info.st_mode)
        try:
            leaf_fd = os.open(leaf, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=fd)
        except OSError as exc:
            raise _open_problem(relpath, exc) from None
        # Checked again on the open file: it may have been swapped since the stat.
        try:
            _refuse_non_regular(relpath, os.fstat(leaf_fd).st_mode)
        except BaseException:
            os.close(leaf_fd)
            raise
        return leaf_fd
    finally:
        if fd != root_fd:
            os.close(fd)


def _refuse_non_regular(relpath: str, mode: int) -> None:
    if stat.S_ISREG(mode):
        return
    raise ArchiveProblemError(ProblemKind.UNSAFE_MEMBER, relpath, f"refusing {describe_mode(mode)}")


def describe_mode(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device file"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a directory where a file belongs"
    return "a file that is not a regular file"


def _open_problem(relpath: str, exc: OSError) -> ArchiveProblemError:
    if exc.errno == errno.ENOENT:
        return ArchiveProblemError(ProblemKind.MISSING_FILE, relpath, "the file is missing")
    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
        return ArchiveProblemError(
            ProblemKind.UNSAFE_MEMBER, relpath, "refusing the path: a directory in it is a symbolic link or a file"
        )
    return ArchiveProblemError(ProblemKind.UNREADABLE, relpath, f"cannot open: {exc.strerror}")


def read_capped(fd: int, cap: int, relpath: str) -> bytes:
    """All of `fd`, refusing (TOO_LARGE) more than `cap` bytes without reading past cap+1."""
    chunks: list[bytes] = []
    total = 0
    while True:
        try:
            chunk = os.read(fd, min(_READ_CHUNK, cap + 1 - total))
        except OSError as exc:
            raise ArchiveProblemError(ProblemKind.UNREADABLE, relpath, f"cannot read: {exc.strerror}") from None
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
        if total > cap:
            raise ArchiveProblemError(ProblemKind.TOO_LARGE, relpath, f"the file is larger than {cap} bytes")
