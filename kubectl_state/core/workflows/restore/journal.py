"""The import journal: what an import has done so far, so an interrupted one can resume.

One JSON object per line, append-only. The first line is a header naming the archive (its
digest), the target server and the namespace mapping; a resume against anything else is
refused, since its entries would describe other objects. Each run appends a `run` line
with its start time, then one line per object as soon as the server acknowledged the write
(or refused it): the object's target identity, its outcome and its uid in the target.

Durability: every line is handed to the kernel with one `write(2)` on an O_APPEND
descriptor before the object counts as done, so a SIGKILL at any point loses nothing the
kernel accepted; a line cut short is impossible for such small single writes on a local
file system, and a torn last line would be ignored anyway. `fsync` runs at most every
FSYNC_INTERVAL seconds and when the journal closes (group commit): an fsync per object
would cost more than the object's own write on most disks. What a power loss can still
take is the unsynced tail, and that case is the same as "written but not yet journaled",
which resume has to handle anyway: the create answers AlreadyExists, the object is read
back, and it counts as created by this import when its content matches the archive and its
managedFields and creationTimestamp show it was created by kubectl-state after the journal
began (workflows/restore/importer.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from kubectl_state.core.errors import InvalidInputError, UsageError
from kubectl_state.core.plan.model import ObjectId
from kubectl_state.core.plan.report import ObjectResult, Outcome

JOURNAL_KIND = "kubectl-state-import-journal"
JOURNAL_VERSION = 1
FSYNC_INTERVAL = 0.5


def default_journal_path(archive_digest: str, server: str, environ: Mapping[str, str]) -> Path:
    """$XDG_STATE_HOME/kubectl-state/imports/<key>.jsonl (~/.local/state by default), keyed by
    the archive and the target server so two imports never share a journal."""
    base = environ.get("XDG_STATE_HOME") or os.path.join(environ.get("HOME") or os.path.expanduser("~"),
                                                         ".local", "state")
    key = hashlib.sha256(f"{archive_digest}\n{server}".encode()).hexdigest()[:32]
    return Path(base) / "kubectl-state" / "imports" / f"{key}.jsonl"


@dataclass(frozen=True, slots=True)
class JournalEntry:
    outcome: Outcome
    uid: str | None
    reason: str


class Journal:
    """Thread-safe appender plus what earlier runs recorded (`entries`, `first_started`)."""

    def __init__(self, path: Path, fd: int, entries: dict[str, JournalEntry], first_started: float) -> None:
        self.path = path
        self._fd = fd
        self.entries = entries
        #: Start of the first run recorded in this journal (epoch seconds).
        self.first_started = first_started
        self._lock = threading.Lock()
        self._last_sync = time.monotonic()
        self._dirty = False

    @classmethod
    def open(cls, path: Path, header: Mapping[str, Any], *, resume: bool) -> Journal:
        """Open for a new run. With `resume`, earlier entries are read (a journal for another
        archive, server or mapping is refused); without it, any old journal is replaced."""
        header = {"kind": JOURNAL_KIND, "version": JOURNAL_VERSION, **header}
        entries: dict[str, JournalEntry] = {}
        now = time.time()
        first_started = now
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if resume and path.exists():
            first_started = _read(path, header, entries) or now
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        else:
            if resume:
                raise UsageError(f"--resume: there is no journal at {path} (nothing to resume); "
                                 "run the import without --resume")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            os.write(fd, _line(header))
        journal = cls(path, fd, entries, first_started)
        journal._append({"run": datetime.fromtimestamp(now, UTC).isoformat(), "started": now})
        journal.sync()
        return journal

    def record(self, result: ObjectResult) -> None:
        line = {"key": result.id.key, "outcome": str(result.outcome), "uid": result.uid, "reason": result.reason}
        self._append(line)

    def entry(self, object_id: ObjectId) -> JournalEntry | None:
        return self.entries.get(object_id.key)

    def _append(self, doc: Mapping[str, Any]) -> None:
        data = _line(doc)
        with self._lock:
            os.write(self._fd, data)
            self._dirty = True
            if time.monotonic() - self._last_sync >= FSYNC_INTERVAL:
                self._sync_locked()

    def sync(self) -> None:
        with self._lock:
            self._sync_locked()

    def _sync_locked(self) -> None:
        if self._fd >= 0 and self._dirty:
            os.fsync(self._fd)
            self._dirty = False
        self._last_sync = time.monotonic()

    def close(self) -> None:
        with self._lock:
            if self._fd < 0:
                return
            self._sync_locked()
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _line(doc: Mapping[str, Any]) -> bytes:
    return (json.dumps(doc, separators=(",", ":"), ensure_ascii=True) + "\n").encode()


def _read(path: Path, header: Mapping[str, Any], entries: dict[str, JournalEntry]) -> float | None:
    """Fill `entries` from the journal at `path`; the start of its first run, if any."""
    with open(path, "rb") as handle:
        lines = handle.read().split(b"\n")
    try:
        found = json.loads(lines[0])
    except ValueError:
        found = None
    if not isinstance(found, dict) or found.get("kind") != JOURNAL_KIND:
        raise InvalidInputError(f"{path} is not a kubectl-state import journal")
    for field in ("version", "archive", "server", "namespaceMapping"):
        if found.get(field) != header.get(field):
            raise UsageError(f"--resume: the journal {path} belongs to another import ({field} differs: "
                             f"{found.get(field)!r}, now {header.get(field)!r}); run without --resume to start over")
    first: float | None = None
    for raw in lines[1:]:
        if not raw.strip():
            continue
        try:
            doc = json.loads(raw)
        except ValueError:
            continue  # a torn last line: that object is handled as written-but-not-journaled
        if not isinstance(doc, dict):
            continue
        if "run" in doc:
            started = doc.get("started")
            if isinstance(started, int | float) and first is None:
                first = float(started)
            continue
        try:
            outcome = Outcome(str(doc.get("outcome")))
        except ValueError:
            continue
        key = doc.get("key")
        if isinstance(key, str):
            uid = doc.get("uid")
            entries[key] = JournalEntry(outcome, uid if isinstance(uid, str) else None, str(doc.get("reason") or ""))
    return first
