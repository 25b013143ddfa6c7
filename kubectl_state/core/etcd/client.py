"""The etcd v3 client of kubectl-state, over etcd's JSON gateway (grpc-gateway) with requests.

It is the only way the project talks to etcd. Every method is one gateway call (iter_prefix
and watch are a few). Failures surface as the core's errors: EtcdError with etcd's own
message and gRPC code when etcd refused, ConnectionFailed (OperationTimeout for timeouts)
when no member answered, InvalidInputError for arguments that cannot be sent.

Failover between members, TLS and authentication live in gateway.py, the HTTP plumbing in
transport.py, the data types and their JSON codec in types.py, watches in watch.py. The one
exception to "JSON gateway": the snapshot stream goes over etcd's gRPC API when grpcio is
installed (grpc_snapshot.py, several times cheaper for the member), the gateway as fallback.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Any

import requests

from kubectl_state.core.errors import ConnectionFailed, EtcdError, InvalidInputError
from kubectl_state.core.etcd.gateway import Gateway, Retry
from kubectl_state.core.etcd.grpc_snapshot import BadToken, TransportFailed, open_snapshot
from kubectl_state.core.etcd.transport import (
    GRPC_UNIMPLEMENTED,
    Stream,
    is_bad_token,
    stream_lost,
    unreachable,
)
from kubectl_state.core.etcd.types import (
    JSON,
    CompactedError,
    Compare,
    EndpointStatus,
    KeyValue,
    Member,
    Op,
    RangeResult,
    TxnResult,
    WatchEvent,
    b64decode,
    decode_header_revision,
    decode_range,
    decode_txn,
    key_range,
    prefix_range_end,
    range_body,
    to_int,
)
from kubectl_state.core.etcd.watch import Watch, watch_cancel_error

__all__ = [
    "CompactedError",
    "Compare",
    "EndpointStatus",
    "EtcdClient",
    "KeyValue",
    "Member",
    "Op",
    "RangeResult",
    "TxnResult",
    "Watch",
    "WatchEvent",
    "prefix_range_end",
]


class EtcdClient:
    """A client for one etcd cluster, reached through any of `endpoints`.

    Thread-safe: one client may serve many threads (requests pools the connections).
    Credentials are kept only in memory and never appear in errors or reprs.
    """

    def __init__(
        self,
        endpoints: Sequence[str],
        *,
        ca_file: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
        verify: bool = True,
    ) -> None:
        self._gw = Gateway(
            endpoints,
            ca_file=ca_file,
            cert_file=cert_file,
            key_file=key_file,
            username=username,
            password=password,
            timeout=timeout,
            verify=verify,
        )
        self.endpoints: list[str] = self._gw.endpoints
        self.timeout = self._gw.timeout
        #: "grpc", or "gateway (why)": how the last snapshot was streamed (for -v and the tests).
        self.last_snapshot_via: str | None = None

    def __repr__(self) -> str:
        return f"EtcdClient(endpoints={self.endpoints!r}, user={self._gw.username!r})"

    def close(self) -> None:
        self._gw.close()

    def __enter__(self) -> EtcdClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- keys ------------------------------------------------------------------------------

    def range(
        self,
        key: bytes,
        range_end: bytes | None = None,
        *,
        prefix: bool = False,
        limit: int = 0,
        revision: int = 0,
        keys_only: bool = False,
        count_only: bool = False,
        serializable: bool = False,
    ) -> RangeResult:
        key, range_end = key_range(key, range_end, prefix)
        body = range_body(key, range_end)
        for name, value in (("limit", limit), ("revision", revision)):
            if value < 0:
                raise InvalidInputError(f"range {name} must not be negative")
            if value:
                body[name] = str(int(value))
        for name, flag in (("keys_only", keys_only), ("count_only", count_only), ("serializable", serializable)):
            if flag:
                body[name] = True
        _, data = self._gw.call("kv/range", body, retry=Retry.READ)
        return decode_range(data)

    def get(self, key: bytes, *, revision: int = 0) -> KeyValue | None:
        result = self.range(key, revision=revision)
        return result.kvs[0] if result.kvs else None

    def iter_prefix(
        self, prefix: bytes, *, page_size: int = 1000, revision: int = 0, keys_only: bool = False
    ) -> Iterator[KeyValue]:
        """Every key under `prefix` in key order, as of one revision, `page_size` keys per call.

        All pages are read at the revision of the first one (or `revision`), so keys written
        while paging do not appear and the result is one consistent cut. A compaction past
        that revision while paging raises CompactedError.
        """
        if page_size < 1:
            raise InvalidInputError(f"page_size must be at least 1, not {page_size}")
        start, end = key_range(prefix, None, True)
        at = revision
        while True:
            page = self.range(start, end, limit=page_size, revision=at, keys_only=keys_only)
            if at == 0:
                at = page.revision
            yield from page.kvs
            if not page.more or not page.kvs:
                return
            start = page.kvs[-1].key + b"\0"

    def put(self, key: bytes, value: bytes, *, lease: int = 0) -> int:
        """Store `value` under `key`; returns the revision of the write."""
        op = Op.put(key, value, lease)
        _, data = self._gw.call("kv/put", dict(op.body), retry=Retry.WRITE)
        return decode_header_revision(data)

    def delete(self, key: bytes, range_end: bytes | None = None, *, prefix: bool = False) -> int:
        """Delete a key or range; returns how many keys were deleted."""
        op = Op.delete(key, range_end, prefix)
        _, data = self._gw.call("kv/deleterange", dict(op.body), retry=Retry.WRITE)
        return to_int(data.get("deleted"))

    def txn(self, compare: Sequence[Compare], success: Sequence[Op], failure: Sequence[Op] = ()) -> TxnResult:
        for c in compare:
            if not isinstance(c, Compare):
                raise InvalidInputError(f"txn compares must be Compare objects, not {type(c).__name__}")
        for o in (*success, *failure):
            if not isinstance(o, Op):
                raise InvalidInputError(f"txn operations must be Op objects, not {type(o).__name__}")
        body: JSON = {
            "compare": [c.to_json() for c in compare],
            "success": [o.to_json() for o in success],
            "failure": [o.to_json() for o in failure],
        }
        read_only = all(o.kind == "range" for o in (*success, *failure))
        _, data = self._gw.call("kv/txn", body, retry=Retry.READ if read_only else Retry.WRITE)
        return decode_txn(data)

    def compact(self, revision: int, *, physical: bool = False) -> None:
        """Drop history before `revision`. `physical` waits until the space is reclaimed."""
        if revision < 1:
            raise InvalidInputError(f"compaction revision must be at least 1, not {revision}")
        body: JSON = {"revision": str(int(revision))}
        if physical:
            body["physical"] = True
        self._gw.call("kv/compaction", body, retry=Retry.WRITE)

    def watch(
        self,
        key: bytes,
        range_end: bytes | None = None,
        *,
        prefix: bool = False,
        start_revision: int = 0,
        prev_kv: bool = False,
    ) -> Watch:
        """Start watching; returns once etcd has confirmed the watch.

        Iterate the result for WatchEvents. Events from `start_revision` on (0: from now) are
        delivered; a compacted `start_revision` raises CompactedError while iterating.
        """
        key, range_end = key_range(key, range_end, prefix)
        if start_revision < 0:
            raise InvalidInputError("start_revision must not be negative")
        create = range_body(key, range_end)
        if start_revision:
            create["start_revision"] = str(int(start_revision))
        if prev_kv:
            create["prev_kv"] = True
        body: JSON = {"create_request": create}
        for attempt in range(2):
            stream, first = self._start_stream("watch", body)
            if first.get("canceled"):
                stream.close()
                error = watch_cancel_error(stream.endpoint, first, start_revision)
                # etcd 3.5 cancels a watch carrying an expired token with "permission denied", which
                # cannot be told apart from a real lack of permission; one fresh token settles it.
                if attempt == 0 and self._gw.username is not None and (is_bad_token(error) or error.code == 7):
                    self._gw.authenticate(stream.endpoint)
                    continue
                raise error
            # Confirmed: from now on the stream may stay silent for as long as nothing changes.
            stream.set_read_timeout(None)
            return Watch(stream, first, start_revision)
        raise AssertionError("unreachable")  # pragma: no cover

    # --- cluster and maintenance ------------------------------------------------------------

    def status(self, endpoint: str | None = None, *, timeout: float | None = None) -> EndpointStatus:
        """Status of `endpoint`, or of the first member that answers when None.

        `timeout` bounds the wait for the answer (default: the client's), so a health sweep
        over many members is not held up for long by one that hangs.
        """
        ep, data = self._gw.call(
            "maintenance/status", {}, retry=Retry.READ, endpoint=self._gw.endpoint_arg(endpoint), timeout=timeout
        )
        return EndpointStatus.from_json(ep, data)

    def health(self, endpoint: str, *, timeout: float | None = None) -> tuple[bool, str]:
        """(healthy, reason) of one member as etcd itself judges it (GET /health).

        etcd answers healthy only when the member has a leader, no alarm is raised, and a
        read through raft succeeds, so it is the closest to "can this member serve and
        commit"; a learner reports unhealthy because it serves no linearizable reads.
        A member that does not answer is unhealthy with the reason why.
        """
        return self._gw.health(self._gw.endpoint_arg(endpoint) or endpoint, timeout=timeout)

    def member_list(self) -> list[Member]:
        _, data = self._gw.call("cluster/member/list", {}, retry=Retry.READ)
        return [Member.from_json(m) for m in data.get("members") or []]

    def member_add(self, peer_urls: Sequence[str], *, learner: bool = False) -> Member:
        if isinstance(peer_urls, str) or not peer_urls:
            raise InvalidInputError("member_add needs a list of peer URLs")
        body: JSON = {"peerURLs": list(peer_urls)}
        if learner:
            body["isLearner"] = True
        _, data = self._gw.call("cluster/member/add", body, retry=Retry.WRITE)
        return Member.from_json(data.get("member") or {})

    def member_remove(self, member_id: int) -> None:
        """Remove a member; EtcdError "member not found" (code 5) when it is not (or no longer) one.

        etcd 3.5 never answers a request to remove an ID it has already removed (it neither
        applies nor refuses it), which would turn a repeated removal into a timeout with an
        unknown outcome; checking the member list first keeps removal repeatable. The request
        goes to another member than the one removed, which may stop before it answers
        ("etcdserver: server stopped") although the removal was applied.
        """
        member = next((m for m in self.member_list() if m.id == member_id), None)
        if member is None:
            raise EtcdError(f"etcdserver: member not found (no member has ID {member_id:x})", code=5)
        avoid = {self._gw.endpoint_arg(url) or url for url in member.client_urls}
        self._gw.call("cluster/member/remove", {"ID": str(int(member_id))}, retry=Retry.WRITE, avoid=avoid)

    def member_promote(self, member_id: int) -> None:
        """Make a learner a voting member; etcd refuses while the learner is not caught up."""
        self._gw.call("cluster/member/promote", {"ID": str(int(member_id))}, retry=Retry.WRITE)

    def move_leader(self, target_id: int) -> None:
        """Hand leadership to the voting member `target_id`.

        Only the leader accepts this, so it goes to whichever configured endpoint is the
        leader. Worth doing before removing or stopping the leader: a follower that proposes
        removing the leader often gets "request timed out" even though the removal applied.
        """
        failures = []
        for ep in self.endpoints:
            try:
                status = self.status(ep)
            except (EtcdError, ConnectionFailed) as exc:
                failures.append(f"{ep}: {exc}")
                continue
            if status.leader and status.leader == status.member_id:
                body: JSON = {"targetID": str(int(target_id))}
                self._gw.call("maintenance/transfer-leadership", body, retry=Retry.WRITE, endpoint=ep)
                return
        detail = f" ({'; '.join(failures)})" if failures else ""
        raise EtcdError(f"none of the endpoints {', '.join(self.endpoints)} is the etcd leader{detail}")

    def alarms(self) -> list[dict[str, Any]]:
        """Active alarms as [{"member_id": int, "alarm": "NOSPACE" | "CORRUPT"}]."""
        _, data = self._gw.call("maintenance/alarm", {"action": "GET"}, retry=Retry.READ)
        return [
            {"member_id": to_int(a.get("memberID")), "alarm": str(a.get("alarm") or "NONE")}
            for a in data.get("alarms") or []
        ]

    def alarm_disarm(self, member_id: int = 0, alarm: str = "NOSPACE") -> None:
        """Clear `alarm` on `member_id` (0: on every member), once its cause is fixed."""
        body: JSON = {"action": "DEACTIVATE", "memberID": str(int(member_id)), "alarm": alarm}
        self._gw.call("maintenance/alarm", body, retry=Retry.WRITE)

    def defragment(self, endpoint: str, *, timeout: float | None = None) -> None:
        """Defragment one member's backend; it blocks that member, so it gets its own timeout."""
        self._gw.call(
            "maintenance/defragment", {}, retry=Retry.WRITE, endpoint=self._gw.endpoint_arg(endpoint), timeout=timeout
        )

    def hash_kv(self, endpoint: str, revision: int = 0) -> tuple[int, int]:
        """(hash, compact_revision) of one member's keys up to `revision` (0: the latest).

        etcd 3.4 and 3.5 route both Hash and HashKV to POST /v3/maintenance/hash in their
        gateway, and Hash wins, so HashKV is reachable only where /maintenance/hashkv exists
        (3.6 and later); elsewhere this raises EtcdError with gRPC code 12 (UNIMPLEMENTED)
        rather than return the unrelated whole-database hash.
        """
        ep = self._gw.endpoint_arg(endpoint)
        body: JSON = {"revision": str(int(revision))} if revision else {}
        try:
            _, data = self._gw.call("maintenance/hashkv", body, retry=Retry.READ, endpoint=ep)
        except EtcdError as exc:
            if exc.code != GRPC_UNIMPLEMENTED or "HTTP 404" not in exc.message:
                raise
            raise EtcdError(
                f"etcd at {ep} does not serve HashKV through its JSON gateway (etcd before 3.6 maps it "
                "onto the whole-database Hash); compare members with `etcdctl endpoint hashkv` instead",
                code=GRPC_UNIMPLEMENTED,
                endpoint=ep,
            ) from None
        return to_int(data.get("hash")), to_int(data.get("compact_revision"))

    def snapshot_stream(self, endpoint: str) -> Iterator[bytes]:
        """The raw snapshot of one member, chunk by chunk, as etcd streams it.

        etcd 3.5 appends the sha256 of the database as the last 32 bytes; checking it belongs
        to the snapshot writer. Closing the iterator early closes the connection.
        """
        for blob, _ in self.snapshot_chunks(endpoint):
            yield blob

    def snapshot_chunks(self, endpoint: str, *, timeout: float | None = None) -> Iterator[tuple[bytes, int]]:
        """Like snapshot_stream, with etcd's remaining_bytes after each chunk.

        remaining_bytes counts the database bytes still to come (the sha256 trailer, sent as
        a message of its own, is not counted), so the first message tells the database size.
        `timeout` is the longest silence tolerated between two messages.
        """
        ep = self._gw.endpoint_arg(endpoint) or self.endpoints[0]
        fast = self._grpc_snapshot(ep, timeout if timeout is not None else self.timeout)
        if fast is not None:
            yield from fast
            return
        stream, first = self._start_stream("maintenance/snapshot", {}, endpoint=ep)
        try:
            if timeout is not None:
                stream.set_read_timeout(timeout)
            yield b64decode(first.get("blob")), to_int(first.get("remaining_bytes"))
            while True:
                try:
                    result = stream.next_result()
                except requests.RequestException as exc:
                    raise stream_lost(unreachable(ep, exc), "snapshot") from None
                if result is None:
                    return
                yield b64decode(result.get("blob")), to_int(result.get("remaining_bytes"))
        finally:
            stream.close()

    def _grpc_snapshot(self, endpoint: str, timeout: float) -> Iterator[tuple[bytes, int]] | None:
        """The snapshot over gRPC (see grpc_snapshot.py), or None to stream it through the gateway:
        grpcio is missing, TLS checks are off, or the gRPC call failed for a transport reason
        before its first chunk. `last_snapshot_via` says which way the last snapshot went."""
        renew = False
        for _ in range(2):
            try:
                fast = open_snapshot(endpoint, self._gw.tls, self._gw.token(endpoint, renew=renew), timeout=timeout)
            except BadToken:
                renew = True
                continue
            except TransportFailed as exc:
                self.last_snapshot_via = f"gateway (gRPC to {endpoint} failed: {exc})"
                return None
            self.last_snapshot_via = "grpc" if fast is not None else "gateway (gRPC not available here)"
            return fast
        raise EtcdError(f"etcd at {endpoint} refused a fresh auth token for the snapshot", endpoint=endpoint)

    def _start_stream(self, path: str, body: JSON, *, endpoint: str | None = None) -> tuple[Stream, JSON]:
        """Open a server stream and read its first message, renewing a stale token once."""
        for attempt in range(2):
            stream: Stream | None = None
            try:
                stream = self._gw.open_stream(path, body, endpoint=endpoint)
                return stream, self._gw.first_result(stream)
            except EtcdError as exc:
                if stream is not None:
                    stream.close()
                if attempt == 0 and self._gw.username is not None and _auth_missing(exc):
                    self._gw.authenticate(exc.endpoint or (stream.endpoint if stream else self.endpoints[0]))
                    continue
                raise
            except BaseException:
                if stream is not None:
                    stream.close()
                raise
        raise AssertionError("unreachable")  # pragma: no cover


def _auth_missing(exc: EtcdError) -> bool:
    # Server streams answer a missing or stale token with "auth: user name is empty" (code 2).
    return is_bad_token(exc) or "user name is empty" in exc.message
