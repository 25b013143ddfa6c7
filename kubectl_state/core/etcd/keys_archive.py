"""Raw etcd key export and import: every key under a prefix, byte-exact, at one revision.

Layout (a directory, or a .tar.gz holding the same two files; readable with jq and base64):

    manifest.json   format, version, source cluster, revision, prefix, counts, and the
                    size and sha256 of keys.jsonl
    keys.jsonl      one JSON object per key, in key order:
                    {"key": b64, "value": b64, "sha256": hex of the value,
                     "createRevision": n, "modRevision": n, "version": n, "lease": n}

Why one JSON-lines file rather than a file per key: keys are arbitrary bytes up to
etcd's request limit, too long and too strange for file names once encoded (NAME_MAX is
255); 100,000 small files cost far more to create, fsync and tar than one sequential
stream; and a stream is what keeps memory bounded on both sides: the exporter holds one
page of keys, the importer one transaction, whatever the size of the export. The
per-value sha256 is in each record (so the manifest stays small however many keys there
are) and the manifest's sha256 of the whole data file seals the records and their order.

Import reads the export twice: first to verify everything (and to check that no target
key exists, unless overwriting) without writing anything, then to write it in bounded
transactions. A tampered export is refused before the first write.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime
import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from kubectl_state.core.errors import InvalidInputError, KubectlStateError, UnsafeOperationError
from kubectl_state.core.etcd.client import Compare, EtcdClient, Op
from kubectl_state.core.etcd.files import AtomicFile, fsync_dir, temp_sibling, write_failed

FORMAT = "kubectl-state/etcd-keys"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DATA = "keys.jsonl"
#: etcd's default --max-txn-ops: more operations (or compares) per txn are refused.
MAX_TXN_OPS = 128
#: Raw bytes of keys and values per txn: etcd refuses requests over --max-request-bytes
#: (1.5 MiB by default), so batches stay under 1 MiB with room for the envelope.
MAX_TXN_BYTES = 1024 * 1024
#: A manifest is a page of JSON; anything bigger is not ours.
MAX_MANIFEST_BYTES = 1024 * 1024
#: The longest record line accepted: a value at etcd's largest request size, base64-encoded, twice over.
MAX_LINE_BYTES = 8 * 1024 * 1024
PAGE_SIZE = 500
TAR_SUFFIXES = (".tar.gz", ".tgz")

Counter = Callable[[int], None]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def is_tar(path: str | os.PathLike[str]) -> bool:
    return os.fspath(path).endswith(TAR_SUFFIXES)


@dataclass(frozen=True)
class ExportResult:
    path: str
    manifest: dict[str, Any]

    @property
    def count(self) -> int:
        return int(self.manifest["count"])

    @property
    def revision(self) -> int:
        return int(self.manifest["revision"])


def _prefix_fields(prefix: bytes) -> dict[str, Any]:
    try:
        text: str | None = prefix.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    return {"prefix": text, "prefixBase64": b64(prefix)}


def export_keys(
    client: EtcdClient,
    path: str | os.PathLike[str],
    *,
    prefix: bytes = b"/registry",
    on_progress: Counter | None = None,
) -> ExportResult:
    """Export every key under `prefix` as of one revision into `path` (a new dir, or a .tar.gz).

    Pages are read at the revision of a first count-only read, so keys written meanwhile are
    left out and the export is one consistent cut; a compaction past that revision while
    paging fails the export (CompactedError) rather than mixing two cuts.
    """
    final = Path(path)
    if final.exists() and not is_tar(final):
        raise UnsafeOperationError(f"refusing to export into {final}: it already exists")
    if not final.parent.is_dir():
        raise KubectlStateError(f"cannot write {final}: directory {final.parent} does not exist")
    head = client.range(prefix, prefix=True, count_only=True)
    status = client.status()
    staging = temp_sibling(final, "staging")
    try:
        os.mkdir(staging, 0o700)
        os.chmod(staging, 0o700)
        data_path = staging / DATA
        with AtomicFile(data_path) as data_file:
            stream = data_file.fileobj()
            digest, size, count, value_bytes, leased = _write_records(
                client, stream, prefix, head.revision, on_progress
            )
            try:
                stream.flush()
            except OSError as exc:
                raise write_failed(final, exc) from None
            stream.close()
            data_file.commit()
        manifest = {
            "format": FORMAT,
            "formatVersion": FORMAT_VERSION,
            **_prefix_fields(prefix),
            "revision": head.revision,
            "count": count,
            "valueBytes": value_bytes,
            "leasedKeys": leased,
            "source": {
                "endpoint": status.endpoint,
                "clusterId": f"{status.cluster_id:x}",
                "memberId": f"{status.member_id:x}",
                "etcdVersion": status.version,
            },
            "time": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "data": {"name": DATA, "size": size, "sha256": digest},
        }
        manifest_bytes = (json.dumps(manifest, indent=2) + "\n").encode()
        if is_tar(final):
            _write_tar(final, manifest_bytes, data_path, size)
        else:
            with AtomicFile(staging / MANIFEST) as mf:
                mf.write(manifest_bytes)
                mf.commit()
            try:
                os.rename(staging, final)
                fsync_dir(final.parent)
            except OSError as exc:
                raise write_failed(final, exc) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ExportResult(str(final), manifest)


def _write_records(
    client: EtcdClient, stream: IO[bytes], prefix: bytes, revision: int, on_progress: Counter | None
) -> tuple[str, int, int, int, int]:
    hasher = hashlib.sha256()
    size = count = value_bytes = leased = 0
    pending = 0
    for kv in client.iter_prefix(prefix, page_size=PAGE_SIZE, revision=revision):
        record = {
            "key": b64(kv.key),
            "value": b64(kv.value),
            "sha256": hashlib.sha256(kv.value).hexdigest(),
            "createRevision": kv.create_revision,
            "modRevision": kv.mod_revision,
            "version": kv.version,
            "lease": kv.lease,
        }
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        try:
            stream.write(line)
        except OSError as exc:
            raise write_failed(Path(getattr(stream, "name", DATA)), exc) from None
        hasher.update(line)
        size += len(line)
        count += 1
        value_bytes += len(kv.value)
        leased += 1 if kv.lease else 0
        pending += 1
        if on_progress is not None and pending >= PAGE_SIZE:
            on_progress(pending)
            pending = 0
    if on_progress is not None and pending:
        on_progress(pending)
    return hasher.hexdigest(), size, count, value_bytes, leased


def _write_tar(final: Path, manifest_bytes: bytes, data_path: Path, size: int) -> None:
    def info(name: str, length: int) -> tarfile.TarInfo:
        ti = tarfile.TarInfo(name)
        ti.size = length
        ti.mode = 0o600
        ti.mtime = int(datetime.datetime.now(datetime.UTC).timestamp())
        return ti

    with AtomicFile(final) as out:
        raw = out.fileobj()
        try:
            # Level 1: etcd values (protobuf, JSON) compress well already at the fastest level,
            # and a 1 GB export should be limited by etcd, not by gzip.
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=1, mtime=0) as gz, \
                    tarfile.open(fileobj=gz, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                tar.addfile(info(MANIFEST, len(manifest_bytes)), io.BytesIO(manifest_bytes))
                with open(data_path, "rb") as data:
                    tar.addfile(info(DATA, size), data)
            raw.flush()
        except OSError as exc:
            raise write_failed(final, exc) from None
        finally:
            raw.close()
        out.commit()


# --- reading ---------------------------------------------------------------------------------


class ExportError(InvalidInputError):
    """An export that is malformed, truncated or tampered with."""


@contextlib.contextmanager
def _open_parts(path: Path) -> Iterator[tuple[dict[str, Any], IO[bytes]]]:
    """(manifest, data stream) of an export directory or .tar.gz; the stream is read once."""
    if not path.exists():
        raise InvalidInputError(f"export {path} does not exist")
    if path.is_dir():
        manifest = _parse_manifest(path / MANIFEST, _read_limited(path / MANIFEST))
        try:
            data_file = open(path / DATA, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise ExportError(f"cannot read {path / DATA}: {exc.strerror}") from None
        with data_file:
            yield manifest, data_file
        return
    try:
        tar = tarfile.open(path, mode="r|gz")  # noqa: SIM115 - closed below
    except (OSError, tarfile.TarError) as exc:
        raise ExportError(f"{path} is not a readable .tar.gz export: {exc}") from None
    with tar:
        try:
            first = tar.next()
            if first is None or first.name != MANIFEST or not first.isreg() or first.size > MAX_MANIFEST_BYTES:
                raise ExportError(f"{path} does not start with a {MANIFEST} of at most {MAX_MANIFEST_BYTES} bytes")
            mf = tar.extractfile(first)
            if mf is None:
                raise ExportError(f"{path}: {MANIFEST} cannot be read")
            manifest = _parse_manifest(path, mf.read())
            second = tar.next()
            if second is None or second.name != DATA or not second.isreg():
                raise ExportError(f"{path} has no {DATA} after its manifest")
            data = tar.extractfile(second)
            if data is None:
                raise ExportError(f"{path}: {DATA} cannot be read")
            yield manifest, data
        except (OSError, tarfile.TarError, EOFError, gzip.BadGzipFile) as exc:
            raise ExportError(f"{path} is truncated or not a valid .tar.gz export: {exc}") from None


def _read_limited(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_MANIFEST_BYTES + 1)
    except OSError as exc:
        raise ExportError(f"cannot read {path}: {exc.strerror}") from None
    if len(data) > MAX_MANIFEST_BYTES:
        raise ExportError(f"{path} is larger than any manifest kubectl-state writes")
    return data


def _parse_manifest(where: Path, raw: bytes) -> dict[str, Any]:
    try:
        manifest = json.loads(raw)
    except ValueError as exc:
        raise ExportError(f"the manifest of {where} is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ExportError(f"{where} is not a kubectl-state etcd key export (no {FORMAT} manifest)")
    if manifest.get("formatVersion") != FORMAT_VERSION:
        raise ExportError(
            f"{where} has format version {manifest.get('formatVersion')!r}; this kubectl-state reads {FORMAT_VERSION}"
        )
    data = manifest.get("data")
    if not (isinstance(data, dict) and isinstance(data.get("size"), int) and isinstance(data.get("sha256"), str)
            and isinstance(manifest.get("count"), int)):
        raise ExportError(f"the manifest of {where} lacks the data file's size, sha256 or the key count")
    return manifest


@dataclass(frozen=True)
class Record:
    key: bytes
    value: bytes
    lease: int


def _records(where: Path, manifest: dict[str, Any], data: IO[bytes]) -> Iterator[Record]:
    """Every record, each value checked against its sha256; the whole file against the manifest at the end."""
    hasher = hashlib.sha256()
    size = count = 0
    prefix = _decode(where, manifest.get("prefixBase64") or "", "prefix")
    while True:
        line = data.readline(MAX_LINE_BYTES)
        if not line:
            break
        if not line.endswith(b"\n"):
            raise ExportError(f"{where}: record {count + 1} is cut off or longer than {MAX_LINE_BYTES} bytes")
        hasher.update(line)
        size += len(line)
        count += 1
        try:
            obj = json.loads(line)
        except ValueError:
            raise ExportError(f"{where}: record {count} is not valid JSON") from None
        if not isinstance(obj, dict):
            raise ExportError(f"{where}: record {count} is not a JSON object")
        key = _decode(where, obj.get("key"), f"key of record {count}")
        value = _decode(where, obj.get("value"), f"value of record {count}")
        if not key.startswith(prefix) or not key:
            raise ExportError(f"{where}: record {count} has a key outside the export's prefix")
        if hashlib.sha256(value).hexdigest() != obj.get("sha256"):
            raise ExportError(f"{where}: the value of record {count} does not match its sha256: tampered with")
        lease = obj.get("lease", 0)
        yield Record(key, value, lease if isinstance(lease, int) else 0)
    data_meta = manifest["data"]
    if size != data_meta["size"] or hasher.hexdigest() != data_meta["sha256"] or count != manifest["count"]:
        raise ExportError(
            f"{where}: the key data does not match the manifest ({count} records, {size} bytes, sha256 "
            f"{hasher.hexdigest()}; the manifest says {manifest['count']}, {data_meta['size']}, "
            f"{data_meta['sha256']}): truncated or tampered with"
        )


def _decode(where: Path, text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise ExportError(f"{where}: the {what} is missing or not text")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ExportError(f"{where}: the {what} is not valid base64") from None


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    with _open_parts(Path(path)) as (manifest, _):
        return manifest


def verify_export(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Check every record and the whole data file against the manifest; returns the manifest."""
    where = Path(path)
    with _open_parts(where) as (manifest, data):
        for _ in _records(where, manifest, data):
            pass
    return manifest


# --- import ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportResult:
    path: str
    count: int
    written: int
    transactions: int
    source_revision: int
    #: Keys that had a lease in the source: written without one (leases do not carry over).
    leases_dropped: int
    revision: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "count": self.count,
            "written": self.written,
            "transactions": self.transactions,
            "sourceRevision": self.source_revision,
            "leasesDropped": self.leases_dropped,
            "revision": self.revision,
        }


def parse_rewrite(spec: str) -> tuple[bytes, bytes]:
    """"OLD:NEW" as etcd key prefixes (text; etcd keys of Kubernetes are ASCII)."""
    old, sep, new = spec.partition(":")
    if not sep or not old or not new:
        raise InvalidInputError(f"a prefix rewrite is OLD:NEW with both non-empty, not {spec!r}")
    return old.encode(), new.encode()


def _batches(records: Iterator[Record]) -> Iterator[list[Record]]:
    batch: list[Record] = []
    size = 0
    for r in records:
        cost = len(r.key) + len(r.value)
        if batch and (len(batch) >= MAX_TXN_OPS or size + cost > MAX_TXN_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(r)
        size += cost
    if batch:
        yield batch


def import_keys(
    client: EtcdClient,
    path: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    rewrite: tuple[bytes, bytes] | None = None,
    on_progress: Counter | None = None,
) -> ImportResult:
    """Write an export's keys into etcd in transactions of at most 128 keys and 1 MiB.

    First pass, writing nothing: every record and the whole file are verified, a rewrite
    must apply to every key, and (without `overwrite`) no target key may exist. Second
    pass: each batch is one txn; without `overwrite` it carries `create_revision == 0`
    compares for all its keys, so a key created meanwhile makes the whole batch fail
    rather than be overwritten (UnsafeOperationError, saying how much was written).
    """
    where = Path(path)

    def target_records(manifest: dict[str, Any], data: IO[bytes]) -> Iterator[Record]:
        for r in _records(where, manifest, data):
            if rewrite is None:
                yield r
                continue
            old, new = rewrite
            if not r.key.startswith(old):
                raise InvalidInputError(
                    f"cannot rewrite {old.decode(errors='replace')} to {new.decode(errors='replace')}: the key "
                    f"{r.key.decode(errors='replace')!r} does not start with it"
                )
            yield Record(new + r.key[len(old):], r.value, r.lease)

    # Pass 1: verify, and look for keys that would be overwritten.
    existing: list[bytes] = []
    with _open_parts(where) as (manifest, data):
        for batch in _batches(target_records(manifest, data)):
            if overwrite or existing:
                continue
            compares = [Compare.create_revision(r.key, "=", 0) for r in batch]
            if not client.txn(compares, []).succeeded:
                existing = [r.key for r in batch if client.get(r.key) is not None]
    if existing:
        shown = ", ".join(repr(k.decode(errors="replace")) for k in existing[:5])
        more = " and more" if len(existing) > 5 else ""
        raise UnsafeOperationError(
            f"refusing to import {where}: keys already exist in etcd ({shown}{more}); nothing was written. "
            "Pass --overwrite to replace them"
        )

    # Pass 2: write.
    written = transactions = leased = 0
    revision = 0
    with _open_parts(where) as (manifest, data):
        for batch in _batches(target_records(manifest, data)):
            puts = [Op.put(r.key, r.value) for r in batch]
            compares = [] if overwrite else [Compare.create_revision(r.key, "=", 0) for r in batch]
            result = client.txn(compares, puts)
            if not result.succeeded:
                raise UnsafeOperationError(
                    f"stopped importing {where}: a key of transaction {transactions + 1} was created in etcd while "
                    f"importing, and is left as it is; {written} of {manifest['count']} keys were written"
                )
            revision = result.revision
            transactions += 1
            written += len(batch)
            leased += sum(1 for r in batch if r.lease)
            if on_progress is not None:
                on_progress(len(batch))
    return ImportResult(
        path=str(where),
        count=int(manifest["count"]),
        written=written,
        transactions=transactions,
        source_revision=int(manifest.get("revision") or 0),
        leases_dropped=leased,
        revision=revision,
    )
