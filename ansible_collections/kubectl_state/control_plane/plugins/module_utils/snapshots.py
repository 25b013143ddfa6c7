# Copyright: kubectl-state developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Snapshot retention and restore bookkeeping for etcd_snapshot.

Retention is kubectl_state.core.etcd.retention's (the CLI's `snapshot save --keep` uses
it too); these wrappers only speak the module's str paths. The restore marker exists only to
make a module run repeatable.
"""

from __future__ import annotations

import json
import os
import time

#: Beside DATA_DIR, what was restored into it, so that a repeated run can tell "already
#: restored from this snapshot" from "a data dir with something else in it". It is kept
#: outside the data dir because etcd warns about every unknown file inside it.
MARKER_SUFFIX = ".restore.json"


def snapshots_in(directory):
    """Paths (str) of the snapshots kubectl-state saved in `directory`, oldest first."""
    from kubectl_state.core.etcd.retention import saved_snapshots

    return [str(path) for path in saved_snapshots(directory)]


def to_prune(directory, keep, extra=None):
    """The snapshot paths beyond the newest `keep`; `extra` is one about to be saved (check mode)."""
    from kubectl_state.core.etcd.retention import snapshots_to_prune

    return [str(path) for path in snapshots_to_prune(directory, keep, extra=extra)]


def prune(paths):
    """Delete snapshots and their metadata files."""
    from pathlib import Path

    from kubectl_state.core.etcd.retention import prune_snapshots

    prune_snapshots([Path(path) for path in paths])


def marker_path(data_dir):
    return os.path.normpath(data_dir) + MARKER_SUFFIX


def restore_record(sha256, path, params):
    """What identifies one restore: the snapshot and the membership it was restored into."""
    if sha256 is None:
        stat = os.stat(path)
        sha256 = f"size={stat.st_size},mtime={int(stat.st_mtime)}"
    return dict(
        snapshot=os.path.abspath(path),
        snapshot_sha256=sha256,
        name=params["name"],
        initial_cluster=params["initial_cluster"],
        initial_advertise_peer_urls=",".join(params["initial_advertise_peer_urls"]),
        initial_cluster_token=params.get("initial_cluster_token"),
    )


def read_marker(data_dir):
    try:
        with open(marker_path(data_dir), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def write_marker(data_dir, record, result):
    data = dict(record, restored=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), result=result)
    path = marker_path(data_dir)
    temp = path + ".tmp"
    with open(temp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(temp, path)
    return path


def is_empty_dir(path):
    return not os.path.exists(path) or (os.path.isdir(path) and not os.listdir(path))


def move_aside(data_dir):
    """Rename a data dir out of the way (never delete it); returns where it went."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = f"{os.path.normpath(data_dir)}.before-restore-{stamp}"
    suffix = 0
    while os.path.exists(target):
        suffix += 1
        target = f"{os.path.normpath(data_dir)}.before-restore-{stamp}-{suffix}"
    os.rename(data_dir, target)
    return target
