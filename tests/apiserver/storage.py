"""Objects in etcd, stored and read as kube-apiserver stores and reads them.

Values are the object's JSON (as with `--storage-media-type=application/json`), without
`metadata.resourceVersion`: an object's resourceVersion is the etcd mod revision of its
key and is filled in on every read. Every write is a transaction conditioned on the key's
mod revision (or on its absence), so two replicas, or two threads, never lose an update:
the loser sees the condition fail and retries or answers 409.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from kubectl_state.core.errors import EtcdError
from kubectl_state.core.etcd.client import Compare, EtcdClient, KeyValue, Op, prefix_range_end

Obj = dict[str, Any]


def encode(obj: Obj) -> bytes:
    meta = obj.get("metadata")
    if isinstance(meta, dict) and ("resourceVersion" in meta or "selfLink" in meta):
        obj = dict(obj)
        obj["metadata"] = {k: v for k, v in meta.items() if k not in ("resourceVersion", "selfLink")}
    # Go's json.Encoder, which kube-apiserver's serializer uses, ends every value with "\n".
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def decode(kv: KeyValue) -> Obj:
    obj: Obj = json.loads(kv.value)
    obj.setdefault("metadata", {})["resourceVersion"] = str(kv.mod_revision)
    return obj


def is_compacted(exc: EtcdError) -> bool:
    return "compacted" in exc.message


class Store:
    """etcd access for one server process. The client is thread-safe and pools its
    connections, so every request thread and watch shares it."""

    def __init__(self, endpoints: list[str], timeout: float = 10.0, *, ca_file: str | None = None,
                 cert_file: str | None = None, key_file: str | None = None) -> None:
        self.endpoints = endpoints
        self.client = EtcdClient(endpoints, timeout=timeout, ca_file=ca_file, cert_file=cert_file, key_file=key_file)

    def close(self) -> None:
        self.client.close()

    def get(self, key: bytes) -> tuple[Obj, KeyValue] | None:
        kv = self.client.get(key)
        if kv is None:
            return None
        return decode(kv), kv

    def create(self, key: bytes, obj: Obj) -> int | None:
        """Store a new object; its revision, or None when the key exists."""
        result = self.client.txn(
            compare=[Compare.create_revision(key, "=", 0)],
            success=[Op.put(key, encode(obj))],
            failure=[],
        )
        return result.revision if result.succeeded else None

    def replace(self, key: bytes, obj: Obj, mod_revision: int) -> int | None:
        """Overwrite the object if it is still at `mod_revision`; None when it changed."""
        result = self.client.txn(
            compare=[Compare.mod_revision(key, "=", mod_revision)],
            success=[Op.put(key, encode(obj))],
            failure=[],
        )
        return result.revision if result.succeeded else None

    def delete(self, key: bytes, mod_revision: int) -> int | None:
        result = self.client.txn(
            compare=[Compare.mod_revision(key, "=", mod_revision)],
            success=[Op.delete(key)],
            failure=[],
        )
        return result.revision if result.succeeded else None

    def delete_prefix(self, prefix: bytes) -> int:
        return self.client.delete(prefix, prefix=True)

    def page(self, prefix: bytes, start: bytes, limit: int, revision: int) -> tuple[list[KeyValue], bool, int]:
        """Keys from `start` (inclusive) to the end of `prefix`, at `revision` (0: now)."""
        result = self.client.range(start, prefix_range_end(prefix), limit=limit, revision=revision)
        return result.kvs, result.more, result.revision

    def count(self, prefix: bytes, start: bytes, revision: int) -> int:
        return self.client.range(start, prefix_range_end(prefix), revision=revision, count_only=True).count

    def iter_prefix(self, prefix: bytes, revision: int = 0) -> Iterator[KeyValue]:
        return self.client.iter_prefix(prefix, revision=revision)

    def current_revision(self) -> int:
        # A count-only range on a key that never exists: only the header's revision matters.
        return self.client.range(b"\0kubectl-state-revision-probe", count_only=True).revision
