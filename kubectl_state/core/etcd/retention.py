"""Retention of saved snapshots: keep the newest N in a directory, delete the rest.

Only snapshots this tool saved count (a FILE.meta.json of our format beside them), so
retention never deletes a file it did not write. Shared by `kubectl state etcd snapshot
save --keep` and the etcd_snapshot Ansible module.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from kubectl_state.core.errors import UsageError
from kubectl_state.core.etcd.snapshot import META_FORMAT, META_SUFFIX, meta_path


def saved_snapshots(directory: str | os.PathLike[str]) -> list[Path]:
    """The snapshots kubectl-state saved in `directory`, oldest first."""
    found: list[tuple[str, float, Path]] = []
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    for entry in names:
        if not entry.endswith(META_SUFFIX):
            continue
        snapshot = Path(directory) / entry[: -len(META_SUFFIX)]
        try:
            meta = json.loads((Path(directory) / entry).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(meta, dict) or meta.get("format") != META_FORMAT or not snapshot.is_file():
            continue
        # The saved time first; the file's mtime breaks ties between snapshots of one second.
        found.append((str(meta.get("time") or ""), snapshot.stat().st_mtime, snapshot))
    found.sort()
    return [path for _, _, path in found]


def snapshots_to_prune(directory: str | os.PathLike[str], keep: int,
                       extra: str | os.PathLike[str] | None = None) -> list[Path]:
    """The snapshots beyond the newest `keep`; `extra` is one about to be saved (for a dry run)."""
    if keep < 1:
        raise UsageError("keeping fewer than one snapshot would delete the one just saved")
    snapshots = saved_snapshots(directory)
    if extra is not None and Path(extra) not in snapshots:
        snapshots.append(Path(extra))
    return snapshots[: max(len(snapshots) - keep, 0)]


def prune_snapshots(paths: list[Path]) -> None:
    """Delete snapshots and their metadata files."""
    for path in paths:
        for victim in (path, meta_path(path)):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(victim)
