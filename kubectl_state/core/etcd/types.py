"""Data types of the etcd v3 API as the JSON gateway speaks it, and their JSON codec.

The gateway encodes with proto3 JSON rules: bytes are base64, 64-bit integers are decimal
strings, and fields equal to their default (0, false, "", empty list) are left out. Every
decoder here therefore treats a missing field as its zero value.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubectl_state.core.errors import EtcdError, InvalidInputError

#: A decoded JSON object as the gateway sends or accepts it.
JSON = dict[str, Any]

#: etcd's own text for a read or watch below the compacted revision (mvcc.ErrCompacted).
COMPACTED_MESSAGE = "etcdserver: mvcc: required revision has been compacted"


class CompactedError(EtcdError):
    """The revision asked for was compacted away; callers must start again from a newer one.

    Kept apart from other EtcdErrors because it is the one failure a reader or watcher is
    expected to recover from (Kubernetes answers it with 410 Gone and clients relist).
    """

    def __init__(
        self, message: str, *, compact_revision: int = 0, code: int | None = 11, endpoint: str | None = None
    ) -> None:
        super().__init__(message, code=code, endpoint=endpoint)
        #: The first revision still available, when etcd told us (watches do, ranges do not).
        self.compact_revision = compact_revision


# --- codec -----------------------------------------------------------------------------------


def as_bytes(what: str, value: object) -> bytes:
    """`value` as bytes; str is refused because keys and values are raw bytes in etcd."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise InvalidInputError(f"etcd {what} must be bytes, not {type(value).__name__}")


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64decode(text: object) -> bytes:
    """Decode a base64 field; None (the field was omitted) is empty bytes."""
    if text is None or text == "":
        return b""
    if not isinstance(text, str):
        raise EtcdError(f"etcd sent a malformed response: expected base64 text, got {type(text).__name__}")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise EtcdError(f"etcd sent a malformed response: invalid base64 ({exc})") from None


def to_int(value: object) -> int:
    """Decode an integer field: int64 arrive as decimal strings, int32 as numbers, 0 as absence."""
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        # bool is an int subclass; a boolean where a number belongs means the response is not what we think.
        raise EtcdError(f"etcd sent a malformed response: expected an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value, 10)
        except ValueError:
            pass
    raise EtcdError(f"etcd sent a malformed response: expected an integer, got {value!r}")


def to_bool(value: object) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    raise EtcdError(f"etcd sent a malformed response: expected a boolean, got {value!r}")


def prefix_range_end(prefix: bytes) -> bytes:
    """The range_end that selects every key starting with `prefix`.

    The last byte below 0xff is incremented and everything after it dropped (a carry);
    b"\\0", which etcd reads as "no upper bound", when there is no such byte.
    """
    prefix = as_bytes("prefix", prefix)
    end = bytearray(prefix)
    while end:
        if end[-1] < 0xFF:
            end[-1] += 1
            return bytes(end)
        end.pop()
    return b"\0"


def key_range(key: bytes, range_end: bytes | None, prefix: bool) -> tuple[bytes, bytes | None]:
    """Validate a (key, range_end, prefix) triple as the public methods accept it."""
    key = as_bytes("key", key)
    if prefix:
        if range_end is not None:
            raise InvalidInputError("give either range_end or prefix=True, not both")
        if key == b"":
            # etcd refuses an empty key; "\0" .. "\0" is its spelling of "every key".
            return b"\0", b"\0"
        return key, prefix_range_end(key)
    if range_end is not None:
        range_end = as_bytes("range_end", range_end)
    if key == b"":
        raise InvalidInputError("an etcd key must not be empty")
    return key, range_end


# --- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyValue:
    key: bytes
    value: bytes
    create_revision: int
    mod_revision: int
    version: int
    lease: int = 0

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> KeyValue:
        return cls(
            key=b64decode(data.get("key")),
            value=b64decode(data.get("value")),
            create_revision=to_int(data.get("create_revision")),
            mod_revision=to_int(data.get("mod_revision")),
            version=to_int(data.get("version")),
            lease=to_int(data.get("lease")),
        )


@dataclass(frozen=True)
class RangeResult:
    kvs: list[KeyValue]
    more: bool
    count: int
    #: The store's revision when the range was served (the response header's), not the one asked for.
    revision: int


@dataclass(frozen=True)
class TxnResult:
    succeeded: bool
    revision: int
    #: One dict per operation of the branch that ran, keyed as etcd keys them ("response_range",
    #: "response_put", "response_delete_range", "response_txn"), with integers decoded, omitted
    #: fields filled in, and "kvs"/"prev_kv"/"prev_kvs" turned into KeyValue.
    responses: list[dict[str, Any]]


@dataclass(frozen=True)
class WatchEvent:
    type: str  # "PUT" or "DELETE"
    kv: KeyValue
    prev_kv: KeyValue | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WatchEvent:
        prev = data.get("prev_kv")
        return cls(
            # PUT is the enum's zero value, so the gateway leaves "type" out for puts.
            type="DELETE" if data.get("type") == "DELETE" else "PUT",
            kv=KeyValue.from_json(data.get("kv") or {}),
            prev_kv=KeyValue.from_json(prev) if prev else None,
        )


@dataclass(frozen=True)
class EndpointStatus:
    endpoint: str
    version: str
    db_size: int
    leader: int
    member_id: int
    cluster_id: int
    raft_index: int
    raft_term: int
    revision: int
    is_learner: bool
    errors: list[str] = field(default_factory=list)
    db_size_in_use: int = 0
    raft_applied_index: int = 0

    @classmethod
    def from_json(cls, endpoint: str, data: Mapping[str, Any]) -> EndpointStatus:
        header = data.get("header") or {}
        return cls(
            endpoint=endpoint,
            version=str(data.get("version") or ""),
            db_size=to_int(data.get("dbSize")),
            leader=to_int(data.get("leader")),
            member_id=to_int(header.get("member_id")),
            cluster_id=to_int(header.get("cluster_id")),
            raft_index=to_int(data.get("raftIndex")),
            raft_term=to_int(data.get("raftTerm")),
            revision=to_int(header.get("revision")),
            is_learner=to_bool(data.get("isLearner")),
            errors=[str(e) for e in data.get("errors") or []],
            db_size_in_use=to_int(data.get("dbSizeInUse")),
            raft_applied_index=to_int(data.get("raftAppliedIndex")),
        )


@dataclass(frozen=True)
class Member:
    id: int
    #: Empty until the member has started and published its name.
    name: str
    peer_urls: list[str]
    #: Empty until the member has started.
    client_urls: list[str]
    is_learner: bool

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Member:
        return cls(
            id=to_int(data.get("ID")),
            name=str(data.get("name") or ""),
            peer_urls=[str(u) for u in data.get("peerURLs") or []],
            client_urls=[str(u) for u in data.get("clientURLs") or []],
            is_learner=to_bool(data.get("isLearner")),
        )


def decode_header(data: Mapping[str, Any]) -> dict[str, int]:
    """A response header with its integers decoded (ids are uint64, the rest int64)."""
    header = data.get("header") or {}
    return {name: to_int(header.get(name)) for name in ("cluster_id", "member_id", "revision", "raft_term")}


def decode_header_revision(data: Mapping[str, Any]) -> int:
    return to_int((data.get("header") or {}).get("revision"))


def decode_range(data: Mapping[str, Any]) -> RangeResult:
    return RangeResult(
        kvs=[KeyValue.from_json(kv) for kv in data.get("kvs") or []],
        more=to_bool(data.get("more")),
        count=to_int(data.get("count")),
        revision=decode_header_revision(data),
    )


def decode_txn_response(op: Mapping[str, Any]) -> dict[str, Any]:
    """One entry of a txn's "responses", decoded (see TxnResult.responses)."""
    if "response_range" in op:
        r = op["response_range"] or {}
        return {
            "response_range": {
                "header": decode_header(r),
                "kvs": [KeyValue.from_json(kv) for kv in r.get("kvs") or []],
                "more": to_bool(r.get("more")),
                "count": to_int(r.get("count")),
            }
        }
    if "response_put" in op:
        r = op["response_put"] or {}
        prev = r.get("prev_kv")
        return {
            "response_put": {
                "header": decode_header(r),
                "prev_kv": KeyValue.from_json(prev) if prev else None,
            }
        }
    if "response_delete_range" in op:
        r = op["response_delete_range"] or {}
        return {
            "response_delete_range": {
                "header": decode_header(r),
                "deleted": to_int(r.get("deleted")),
                "prev_kvs": [KeyValue.from_json(kv) for kv in r.get("prev_kvs") or []],
            }
        }
    if "response_txn" in op:
        nested = decode_txn(op["response_txn"] or {})
        return {
            "response_txn": {"succeeded": nested.succeeded, "revision": nested.revision, "responses": nested.responses}
        }
    # An empty object is what the gateway sends for a put/delete whose fields are all default.
    return dict(op)


def decode_txn(data: Mapping[str, Any]) -> TxnResult:
    return TxnResult(
        succeeded=to_bool(data.get("succeeded")),
        revision=decode_header_revision(data),
        responses=[decode_txn_response(r) for r in data.get("responses") or []],
    )


# --- request builders ------------------------------------------------------------------------

_COMPARE_RESULTS = {"=": "EQUAL", "==": "EQUAL", "!=": "NOT_EQUAL", "<": "LESS", ">": "GREATER"}


@dataclass(frozen=True)
class Compare:
    """One condition of a transaction; build it with the static methods."""

    target: str
    result: str
    key: bytes
    operand: int | bytes

    @staticmethod
    def _make(target: str, key: bytes, op: str, operand: int | bytes) -> Compare:
        key = as_bytes("key", key)
        if not key:
            raise InvalidInputError("an etcd key must not be empty")
        try:
            result = _COMPARE_RESULTS[op]
        except KeyError:
            raise InvalidInputError(f"unknown comparison {op!r}: use one of = != < >") from None
        return Compare(target=target, result=result, key=key, operand=operand)

    @staticmethod
    def mod_revision(key: bytes, op: str, rev: int) -> Compare:
        return Compare._make("MOD", key, op, int(rev))

    @staticmethod
    def create_revision(key: bytes, op: str, rev: int) -> Compare:
        """`create_revision(key, "=", 0)` holds exactly when the key does not exist."""
        return Compare._make("CREATE", key, op, int(rev))

    @staticmethod
    def version(key: bytes, op: str, v: int) -> Compare:
        return Compare._make("VERSION", key, op, int(v))

    @staticmethod
    def value(key: bytes, op: str, value: bytes) -> Compare:
        return Compare._make("VALUE", key, op, as_bytes("value", value))

    @staticmethod
    def lease(key: bytes, op: str, lease: int) -> Compare:
        return Compare._make("LEASE", key, op, int(lease))

    def to_json(self) -> JSON:
        body: JSON = {"key": b64encode(self.key), "target": self.target, "result": self.result}
        if isinstance(self.operand, bytes):
            body["value"] = b64encode(self.operand)
        else:
            field_name = {"MOD": "mod_revision", "CREATE": "create_revision", "VERSION": "version", "LEASE": "lease"}
            body[field_name[self.target]] = str(self.operand)
        return body


@dataclass(frozen=True)
class Op:
    """One operation of a transaction; build it with the static methods."""

    kind: str  # "put", "delete" or "range"
    body: tuple[tuple[str, Any], ...]

    @staticmethod
    def put(key: bytes, value: bytes, lease: int = 0, *, prev_kv: bool = False) -> Op:
        key = as_bytes("key", key)
        if not key:
            raise InvalidInputError("an etcd key must not be empty")
        body: JSON = {"key": b64encode(key), "value": b64encode(as_bytes("value", value))}
        if lease:
            body["lease"] = str(int(lease))
        if prev_kv:
            body["prev_kv"] = True
        return Op("put", tuple(body.items()))

    @staticmethod
    def delete(key: bytes, range_end: bytes | None = None, prefix: bool = False, *, prev_kv: bool = False) -> Op:
        key, range_end = key_range(key, range_end, prefix)
        body = range_body(key, range_end)
        if prev_kv:
            body["prev_kv"] = True
        return Op("delete", tuple(body.items()))

    @staticmethod
    def range(
        key: bytes,
        range_end: bytes | None = None,
        prefix: bool = False,
        *,
        limit: int = 0,
        keys_only: bool = False,
        count_only: bool = False,
    ) -> Op:
        key, range_end = key_range(key, range_end, prefix)
        body = range_body(key, range_end)
        if limit:
            body["limit"] = str(int(limit))
        if keys_only:
            body["keys_only"] = True
        if count_only:
            body["count_only"] = True
        return Op("range", tuple(body.items()))

    def to_json(self) -> JSON:
        wrapper = {"put": "request_put", "delete": "request_delete_range", "range": "request_range"}[self.kind]
        return {wrapper: dict(self.body)}


def range_body(key: bytes, range_end: bytes | None) -> JSON:
    body: JSON = {"key": b64encode(key)}
    if range_end is not None:
        body["range_end"] = b64encode(range_end)
    return body
