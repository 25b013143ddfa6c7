# Copyright: kubectl-state developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Snapshot retention and restore bookkeeping for etcd_snapshot.

These two pieces are not in kubectl_state.core yet (the CLI does not need them):
retention (`keep: N`) is meant to move into kubectl_state.core.etcd.snapshot as it is
written here; the restore marker exists only to make a module run repeatable.
"""

from __future__ import annotations

import contextlib
import json
import os
import time

#: Beside DATA_DIR, what was restored into it, so that a repeated run can tell "already
#: restored from this snapshot" from "a data dir with something else in it". It is kept
#: outside the data dir because etcd warns about every unknown file inside it.
MARKER_SUFFIX = ".restore.json"


def snapshots_in(directory):
    """Paths of the snapshots saved by kubectl-state in `directory`, oldest first.

    A snapshot counts only with its metadata file (FILE.meta.json, format
    kubectl-state/etcd-snapshot), so retention never touches a file it did not write.
    """
    from kubectl_state.core.etcd.snapshot import META_FORMAT, META_SUFFIX

    found = []
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    for entry in names:
        if not entry.endswith(META_SUFFIX):
            continue
        snapshot = os.path.join(directory, entry[: -len(META_SUFFIX)])
        try:
            with open(os.path.join(directory, entry), encoding="utf-8") as f:
                meta = json.load(f)
        except (OSError, ValueError):
            continue
        if not isinstance(meta, dict) or meta.get("format") != META_FORMAT or not os.path.isfile(snapshot):
            continue
        # The saved time first; the file's mtime breaks ties between snapshots of the same second.
        found.append((str(meta.get("time") or ""), os.path.getmtime(snapshot), snapshot))
    found.sort()
    return [entry[2] for entry in found]


def to_prune(directory, keep, extra=None):
    """The snapshot paths beyond the newest `keep`; `extra` is one about to be saved (check mode)."""
    snapshots = snapshots_in(directory)
    if extra is not None and extra not in snapshots:
        snapshots.append(extra)
    return snapshots[: max(len(snapshots) - keep, 0)]


def prune(paths):
    """Delete snapshots and their metadata files."""
    from kubectl_state.core.etcd.snapshot import meta_path

    for path in paths:
        for victim in (path, str(meta_path(path))):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(victim)


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
