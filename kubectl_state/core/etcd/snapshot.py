"""etcd snapshots: save from a live member, check a saved file, restore it offline.

The snapshot stream of etcd (3.4 and 3.5 alike) is the member's whole bbolt database
followed by 32 bytes: the sha256 of the database, sent as a message of its own after the
last chunk. The file keeps that trailer, as `etcdctl snapshot save` does, so that
`etcdutl snapshot restore` checks it again (etcdutl recognises it by the file size: a
bbolt file is whole pages, so size % 512 == 32 means a trailer is there).

Beside FILE the saver writes FILE.meta.json: where and when the snapshot was taken, the
database size and its sha256, so that a later check can also catch a file that lost its
trailer (truncated) or was swapped.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubectl_state.core.errors import (
    ConnectionFailed,
    EtcdError,
    InvalidInputError,
    KubectlStateError,
    UnsafeOperationError,
)
from kubectl_state.core.etcd.client import EndpointStatus, EtcdClient
from kubectl_state.core.etcd.files import AtomicFile, read_json, write_json
from kubectl_state.core.etcd.tools import Tool, offline_tool

SHA256_SIZE = 32
META_SUFFIX = ".meta.json"
META_FORMAT = "kubectl-state/etcd-snapshot"
META_VERSION = 1
#: Status probes before choosing the member to stream from are quick or not at all.
PROBE_TIMEOUT = 3.0
#: The longest silence tolerated in the middle of a snapshot stream.
STREAM_IDLE_TIMEOUT = 60.0
_READ_CHUNK = 1024 * 1024
#: Where etcdutl versions that can (3.5.10+) are asked to move revisions: far beyond any
#: revision the old cluster could have reached, as etcd's own restore guide suggests.
DEFAULT_BUMP_REVISION = 1_000_000_000

Progress = Callable[[int, int], None]


class SnapshotIntegrityError(InvalidInputError):
    """A snapshot file is truncated, altered or not a snapshot; it must not be restored."""


def meta_path(path: str | os.PathLike[str]) -> Path:
    return Path(f"{os.fspath(path)}{META_SUFFIX}")


@dataclass(frozen=True)
class SnapshotInfo:
    path: str
    meta_path: str
    #: The member's revision just before the stream began; the database holds at least it.
    revision: int
    cluster_id: int
    member_id: int
    etcd_version: str
    #: Bytes of the bbolt database (the file is 32 bytes longer: the sha256 trailer).
    db_size: int
    sha256: str
    time: str
    endpoint: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": META_FORMAT,
            "formatVersion": META_VERSION,
            "file": os.path.basename(self.path),
            "revision": self.revision,
            "clusterId": f"{self.cluster_id:x}",
            "memberId": f"{self.member_id:x}",
            "etcdVersion": self.etcd_version,
            "dbSize": self.db_size,
            "fileSize": self.db_size + SHA256_SIZE,
            "sha256": self.sha256,
            "time": self.time,
            "endpoint": self.endpoint,
        }


# --- save ------------------------------------------------------------------------------------


def choose_members(client: EtcdClient) -> tuple[list[EndpointStatus], list[str]]:
    """The configured endpoints that answer, the leader first; and why the others did not."""
    answering: list[EndpointStatus] = []
    failures: list[str] = []
    for ep in client.endpoints:
        try:
            answering.append(client.status(ep, timeout=PROBE_TIMEOUT))
        except (EtcdError, ConnectionFailed) as exc:
            failures.append(str(exc))
    # The leader has every committed entry applied; a lagging follower could hand out an
    # older state. sorted() is stable, so the others keep the order they were given in.
    answering.sort(key=lambda s: 0 if s.leader and s.leader == s.member_id else 1)
    return answering, failures


def save_snapshot(
    client: EtcdClient, path: str | os.PathLike[str], *, on_progress: Progress | None = None
) -> SnapshotInfo:
    """Stream a snapshot from one member into `path` (atomically, 0600) and write its metadata.

    The leader is asked first, then the other endpoints in order; a member that fails before
    or during the stream is passed over for the next. Memory stays bounded: chunks go to
    disk as they arrive and only the last 32 bytes are held back to tell the trailer apart.
    Nothing is left at `path` (or beside it) when every member fails.
    """
    final = Path(path)
    candidates, failures = choose_members(client)
    for status in candidates:
        try:
            info = _save_from(client, status, final, on_progress)
        except (EtcdError, ConnectionFailed) as exc:
            failures.append(str(exc))
            continue
        return info
    detail = "; ".join(failures) or "no endpoints"
    raise ConnectionFailed(f"could not take a snapshot from any etcd endpoint ({detail})")


def _save_from(client: EtcdClient, status: EndpointStatus, final: Path, on_progress: Progress | None) -> SnapshotInfo:
    ep = status.endpoint
    hasher = hashlib.sha256()
    held = b""  # the last bytes seen, which may turn out to be the trailer
    received = 0
    expected = -1
    with AtomicFile(final) as out:
        for blob, remaining in client.snapshot_chunks(ep, timeout=STREAM_IDLE_TIMEOUT):
            if expected < 0:
                expected = len(blob) + remaining
            out.write(blob)
            received += len(blob)
            if len(blob) >= SHA256_SIZE:
                # Without joining: a 1 GB snapshot is 32,768 chunks, each copied once more otherwise.
                hasher.update(held)
                view = memoryview(blob)
                hasher.update(view[:-SHA256_SIZE])
                held = bytes(view[-SHA256_SIZE:])
            else:
                joined = held + blob
                hasher.update(joined[:-SHA256_SIZE])
                held = joined[-SHA256_SIZE:]
            if on_progress is not None:
                on_progress(min(received, max(expected, 0)), max(expected, 0))
        db_size = received - SHA256_SIZE
        if db_size <= 0 or (expected >= 0 and db_size != expected):
            raise EtcdError(
                f"the snapshot stream from etcd at {ep} ended after {received} bytes, "
                f"expected {expected + SHA256_SIZE} (database and sha256)",
                endpoint=ep,
            )
        digest = hasher.digest()
        if held != digest:
            raise EtcdError(
                f"the snapshot from etcd at {ep} fails its sha256 check (computed {digest.hex()}, "
                f"etcd sent {held.hex()})",
                endpoint=ep,
            )
        info = SnapshotInfo(
            path=str(final),
            meta_path=str(meta_path(final)),
            revision=status.revision,
            cluster_id=status.cluster_id,
            member_id=status.member_id,
            etcd_version=status.version,
            db_size=db_size,
            sha256=digest.hex(),
            time=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            endpoint=ep,
        )
        out.commit()
    try:
        write_json(info.meta_path, info.to_dict())
    except BaseException:
        # A snapshot without its metadata would pass for one whose metadata was lost; all or nothing.
        final.unlink(missing_ok=True)
        raise
    return info


# --- check -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SnapshotStatus:
    path: str
    file_size: int
    #: "trailer", "metadata", "trailer+metadata" or "etcdutl" (only the tool's own check).
    verified_by: str
    sha256: str | None
    revision: int
    total_keys: int
    total_size: int
    hash: int
    meta: dict[str, Any] | None = field(default=None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "fileSize": self.file_size,
            "verifiedBy": self.verified_by,
            "sha256": self.sha256,
            "revision": self.revision,
            "totalKeys": self.total_keys,
            "totalSize": self.total_size,
            "hash": self.hash,
            "metadata": self.meta,
        }


def _hash_prefix(path: Path, length: int) -> bytes:
    hasher = hashlib.sha256()
    left = length
    with open(path, "rb") as f:
        while left > 0:
            chunk = f.read(min(_READ_CHUNK, left))
            if not chunk:
                break
            hasher.update(chunk)
            left -= len(chunk)
    return hasher.digest()


def check_integrity(path: str | os.PathLike[str]) -> tuple[str, str | None, dict[str, Any] | None]:
    """Check a snapshot file against its sha256 trailer and its metadata file, where present.

    Returns (what verified it, the database sha256 or None, the metadata or None); raises
    SnapshotIntegrityError for a file that is truncated or altered. A file with neither
    (a db copied out of a data dir) passes here and is left to etcdutl's own check.
    """
    file = Path(path)
    if not file.is_file():
        raise InvalidInputError(f"snapshot file {file} does not exist or is not a file")
    size = file.stat().st_size
    meta: dict[str, Any] | None = None
    mp = meta_path(file)
    if mp.is_file():
        loaded = read_json(mp, "snapshot metadata")
        if not isinstance(loaded, dict) or loaded.get("format") != META_FORMAT:
            raise SnapshotIntegrityError(f"{mp} is not kubectl-state snapshot metadata")
        meta = loaded
    has_trailer = size > SHA256_SIZE and size % 512 == SHA256_SIZE
    if meta is not None and meta.get("fileSize") != size:
        raise SnapshotIntegrityError(
            f"snapshot {file} is {size} bytes but was saved with {meta.get('fileSize')}: it is truncated or "
            "altered; refusing it"
        )
    if not has_trailer and meta is None:
        return "etcdutl", None, None
    db_size = size - SHA256_SIZE
    digest = _hash_prefix(file, db_size)
    verified = []
    if has_trailer:
        with open(file, "rb") as f:
            f.seek(db_size)
            trailer = f.read(SHA256_SIZE)
        if trailer != digest:
            raise SnapshotIntegrityError(
                f"snapshot {file} fails its sha256 check (the database hashes to {digest.hex()}, the file's "
                f"trailer says {trailer.hex()}): it is truncated or altered; refusing it"
            )
        verified.append("trailer")
    if meta is not None:
        if meta.get("sha256") != digest.hex():
            raise SnapshotIntegrityError(
                f"snapshot {file} does not match its metadata (sha256 {digest.hex()}, {mp} says "
                f"{meta.get('sha256')}): it is altered or not the file that was saved; refusing it"
            )
        verified.append("metadata")
    return "+".join(verified), digest.hex(), meta


def _tool_failure(
    tool: Tool, what: str, file: Path, stderr: str, cls: type[KubectlStateError] = SnapshotIntegrityError
) -> KubectlStateError:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    detail = lines[-1] if lines else "no message"
    return cls(f"{tool.kind} could not {what} {file}: {detail}")


def snapshot_status(path: str | os.PathLike[str], *, tool: str | None = None) -> SnapshotStatus:
    """Integrity (our checks, then the tool's), revision, key count and size of a snapshot file."""
    file = Path(path)
    verified_by, sha, meta = check_integrity(file)
    runner = offline_tool(tool)
    result = runner.run(["snapshot", "status", str(file), "--write-out=json"])
    if result.returncode != 0:
        raise _tool_failure(runner, "read the snapshot", file, result.stderr or result.stdout)
    try:
        data = json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise _tool_failure(runner, "read the snapshot", file, result.stdout) from None
    return SnapshotStatus(
        path=str(file),
        file_size=file.stat().st_size,
        verified_by=verified_by if verified_by != "etcdutl" else runner.kind,
        sha256=sha,
        revision=int(data.get("revision", 0)),
        total_keys=int(data.get("totalKey", 0)),
        total_size=int(data.get("totalSize", 0)),
        hash=int(data.get("hash", 0)),
        meta=meta,
    )


# --- restore ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RestoreResult:
    name: str
    data_dir: str
    initial_cluster: str
    initial_cluster_token: str
    #: The snapshot's revision; the restored member starts there (plus the bump, if any).
    revision: int
    #: How far revisions were moved forward (0: not moved).
    bumped_by: int
    #: True when the tool could not mark old revisions compacted: compact at `revision`
    #: after the first start so watchers relist (see `kubectl state etcd compact`).
    compaction_needed: bool
    tool: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dataDir": self.data_dir,
            "initialCluster": self.initial_cluster,
            "initialClusterToken": self.initial_cluster_token,
            "revision": self.revision,
            "bumpedBy": self.bumped_by,
            "compactionNeeded": self.compaction_needed,
            "tool": self.tool,
        }


def default_token(sha256: str | None, initial_cluster: str) -> str:
    """A new cluster token every member restoring the same file into the same cluster agrees on.

    Member and cluster IDs are derived from the token, so every member must use the same
    one, and it must differ from the old cluster's so that the two can never mix. Hashing
    the snapshot with the new membership gives exactly that without anyone passing it around.
    """
    seed = f"{sha256 or ''}|{initial_cluster}".encode()
    return f"kubectl-state-restore-{hashlib.sha256(seed).hexdigest()[:16]}"


def _undo(target: Path, existed: bool) -> None:
    """Remove what a failed restore left in a data dir that was empty or absent before."""
    if not existed:
        shutil.rmtree(target, ignore_errors=True)
        return
    for child in target.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def restore_snapshot(
    path: str | os.PathLike[str],
    *,
    name: str,
    data_dir: str | os.PathLike[str],
    initial_cluster: str,
    initial_advertise_peer_urls: str,
    initial_cluster_token: str | None = None,
    bump_revision: int | None = None,
    mark_compacted: bool = True,
    skip_hash_check: bool = False,
    tool: str | None = None,
) -> RestoreResult:
    """Write a new data dir for one member from a snapshot (offline; the member must not run).

    Refuses a non-empty data dir (UnsafeOperationError) and a snapshot that fails its
    checks. `bump_revision` (default: DEFAULT_BUMP_REVISION) with `mark_compacted` is passed
    on where the tool supports it (etcdutl 3.5.10+, found from its --help); elsewhere the
    result says a compaction is needed after the first start. A data dir this call created
    is removed again when the tool fails.
    """
    file = Path(path)
    target = Path(data_dir)
    for flag, value in (("name", name), ("initial-cluster", initial_cluster),
                        ("initial-advertise-peer-urls", initial_advertise_peer_urls)):
        if not value:
            raise InvalidInputError(f"restoring a snapshot needs --{flag}")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UnsafeOperationError(
            f"refusing to restore into {target}: it is not an empty directory; a restore never overwrites "
            "a data dir (move it aside or choose another --data-dir)"
        )
    verified_by, sha, _ = check_integrity(file)
    if verified_by == "etcdutl" and not skip_hash_check:
        raise SnapshotIntegrityError(
            f"snapshot {file} has no sha256 trailer and no metadata file, so it cannot be verified; if it is a "
            "db file copied out of a data dir, pass --skip-hash-check"
        )
    status = snapshot_status(file, tool=tool)
    runner = offline_tool(tool)
    token = initial_cluster_token or default_token(sha, initial_cluster)
    args = [
        "snapshot", "restore", str(file),
        f"--name={name}",
        f"--data-dir={target}",
        f"--initial-cluster={initial_cluster}",
        f"--initial-advertise-peer-urls={initial_advertise_peer_urls}",
        f"--initial-cluster-token={token}",
    ]
    if skip_hash_check:
        args.append("--skip-hash-check")
    bump = DEFAULT_BUMP_REVISION if bump_revision is None else bump_revision
    bumped_by = 0
    if bump > 0 and runner.kind == "etcdutl" and runner.supports(["snapshot", "restore"], "--bump-revision"):
        args.append(f"--bump-revision={bump}")
        if mark_compacted:
            args.append("--mark-compacted")
        bumped_by = bump
    existed = target.exists()
    result = runner.run(args)
    if result.returncode != 0:
        _undo(target, existed)
        raise _tool_failure(runner, "restore", file, result.stderr or result.stdout, KubectlStateError)
    os.chmod(target, 0o700)
    return RestoreResult(
        name=name,
        data_dir=str(target),
        initial_cluster=initial_cluster,
        initial_cluster_token=token,
        revision=status.revision,
        bumped_by=bumped_by,
        # Revision 1 is an empty store: there is no history for watchers to be stale on.
        compaction_needed=not (bumped_by and mark_compacted) and status.revision > 1,
        tool=runner.path,
    )
