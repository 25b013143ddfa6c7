"""Durable, private, all-or-nothing files for snapshots and key exports.

A file is written under a hidden temporary name in its final directory (same file system,
so the rename is atomic), fsynced, renamed over the final name and the directory fsynced.
Until commit() nothing exists at the final name; abort() (or leaving the `with` block by
an exception) removes the temporary file, so a failure never leaves half a backup behind.
Files are 0600 whatever the umask: snapshots and exports hold every Secret of the cluster.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

from kubectl_state.core.errors import InvalidInputError, KubectlStateError

FILE_MODE = 0o600


def temp_sibling(final: Path, tag: str = "partial") -> Path:
    return final.parent / f".{final.name}.{tag}-{os.urandom(6).hex()}"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_failed(path: Path, exc: OSError) -> KubectlStateError:
    reason = exc.strerror or str(exc)
    return KubectlStateError(f"cannot write {path}: {reason}")


class AtomicFile:
    """A new file that appears at `final` only when commit() succeeds."""

    def __init__(self, final: str | os.PathLike[str]) -> None:
        self.final = Path(final)
        if self.final.is_dir():
            raise KubectlStateError(f"{self.final} is a directory")
        if not self.final.parent.is_dir():
            raise KubectlStateError(f"cannot write {self.final}: directory {self.final.parent} does not exist")
        self.temp = temp_sibling(self.final)
        try:
            self._fd: int | None = os.open(
                self.temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE
            )
            os.fchmod(self._fd, FILE_MODE)
        except OSError as exc:
            raise write_failed(self.final, exc) from None
        self.size = 0

    def write(self, data: bytes | memoryview) -> None:
        if self._fd is None:
            raise KubectlStateError(f"{self.final} is already closed")
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            raise write_failed(self.final, exc) from None
        self.size += len(data)

    def fileobj(self, buffering: int = 1024 * 1024) -> BinaryIO:
        """A buffered file object over the temp file (for gzip/tar); flush it before commit()."""
        if self._fd is None:
            raise KubectlStateError(f"{self.final} is already closed")
        return open(self._fd, "wb", buffering=buffering, closefd=False)

    def commit(self) -> None:
        if self._fd is None:
            raise KubectlStateError(f"{self.final} is already closed")
        try:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None
            os.replace(self.temp, self.final)
            fsync_dir(self.final.parent)
        except OSError as exc:
            self.abort()
            raise write_failed(self.final, exc) from None

    def abort(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.temp)

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # Whatever was not committed goes, including after KeyboardInterrupt.
        if self._fd is not None or exc_type is not None:
            self.abort()


def write_json(path: str | os.PathLike[str], data: Any) -> None:
    """`data` as indented JSON in a new 0600 file, atomically."""
    with AtomicFile(path) as f:
        f.write((json.dumps(data, indent=2) + "\n").encode())
        f.commit()


def read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_bytes())
    except OSError as exc:
        raise InvalidInputError(f"cannot read the {what} {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise InvalidInputError(f"the {what} {path} is not valid JSON: {exc}") from None
