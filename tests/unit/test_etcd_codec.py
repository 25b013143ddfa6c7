"""The pure pieces of the etcd client: range ends, the proto3-JSON codec, request builders."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubectl_state.core.errors import EtcdError, InvalidInputError
from kubectl_state.core.etcd.client import (
    CompactedError,
    Compare,
    EndpointStatus,
    KeyValue,
    Member,
    Op,
    WatchEvent,
    prefix_range_end,
)
from kubectl_state.core.etcd.gateway import _api_prefix_for, normalize_endpoint
from kubectl_state.core.etcd.transport import error_from_body
from kubectl_state.core.etcd.types import b64decode, decode_range, decode_txn, key_range, to_int


@pytest.mark.parametrize(
    ("prefix", "end"),
    [
        (b"/registry/", b"/registry0"),
        (b"a", b"b"),
        (b"a\xff", b"b"),
        (b"a\xfe", b"a\xff"),
        (b"\x01\xff\xff", b"\x02"),
        (b"\xff", b"\0"),
        (b"\xff\xff", b"\0"),
        (b"", b"\0"),
    ],
)
def test_prefix_range_end_increments_last_byte_with_carry(prefix: bytes, end: bytes) -> None:
    assert prefix_range_end(prefix) == end


@given(st.binary(min_size=1, max_size=8), st.binary(max_size=8))
def test_prefix_range_end_bounds_exactly_the_keys_with_the_prefix(prefix: bytes, suffix: bytes) -> None:
    end = prefix_range_end(prefix)
    key = prefix + suffix
    assert key >= prefix
    assert end == b"\0" or key < end
    if end != b"\0":
        assert not end.startswith(prefix)


def test_prefix_range_end_refuses_text() -> None:
    with pytest.raises(InvalidInputError, match="bytes"):
        prefix_range_end("/registry/")  # type: ignore[arg-type]


def test_empty_prefix_means_every_key() -> None:
    assert key_range(b"", None, True) == (b"\0", b"\0")


def test_prefix_and_range_end_together_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="not both"):
        key_range(b"/a", b"/b", True)


@pytest.mark.parametrize(
    ("raw", "value"),
    [(None, 0), ("", 0), ("0", 0), ("42", 42), (7, 7), ("18446744073709551615", 2**64 - 1), ("-3", -3)],
)
def test_to_int_decodes_proto3_json_integers(raw: object, value: int) -> None:
    assert to_int(raw) == value


@pytest.mark.parametrize("raw", ["4x", "1.5", True, [], {}])
def test_to_int_refuses_what_is_not_an_integer(raw: object) -> None:
    with pytest.raises(EtcdError, match="malformed"):
        to_int(raw)


def test_b64decode_treats_absence_as_empty_and_refuses_garbage() -> None:
    assert b64decode(None) == b""
    assert b64decode("AP8=") == b"\x00\xff"
    with pytest.raises(EtcdError, match="base64"):
        b64decode("not base64!")


def test_key_value_decodes_omitted_fields_as_zero() -> None:
    kv = KeyValue.from_json({"key": "Zm9v", "create_revision": "2", "mod_revision": "5", "version": "3"})
    assert kv == KeyValue(b"foo", b"", 2, 5, 3, 0)


def test_range_response_decodes_count_more_and_header_revision() -> None:
    result = decode_range(
        {
            "header": {"revision": "9"},
            "kvs": [{"key": "YQ==", "value": "MQ==", "mod_revision": "9"}],
            "more": True,
            "count": "12",
        }
    )
    assert (result.revision, result.count, result.more) == (9, 12, True)
    assert result.kvs[0].key == b"a"
    assert decode_range({"header": {"revision": "3"}}).kvs == []


def test_txn_response_decodes_each_operation() -> None:
    result = decode_txn(
        {
            "header": {"revision": "7"},
            "succeeded": True,
            "responses": [
                {"response_range": {"header": {"revision": "7"}, "kvs": [{"key": "YQ=="}], "count": "1"}},
                {"response_put": {"header": {"revision": "7"}}},
                {"response_delete_range": {"header": {"revision": "7"}, "deleted": "2"}},
            ],
        }
    )
    assert result.succeeded is True
    assert result.revision == 7
    rng, put, delete = result.responses
    assert rng["response_range"]["kvs"] == [KeyValue(b"a", b"", 0, 0, 0)]
    assert rng["response_range"]["more"] is False
    assert put["response_put"] == {
        "header": {"cluster_id": 0, "member_id": 0, "revision": 7, "raft_term": 0},
        "prev_kv": None,
    }
    assert delete["response_delete_range"]["deleted"] == 2
    assert decode_txn({"header": {"revision": "8"}}).succeeded is False


def test_watch_event_without_type_is_a_put() -> None:
    put = WatchEvent.from_json({"kv": {"key": "YQ==", "mod_revision": "4"}})
    delete = WatchEvent.from_json(
        {"type": "DELETE", "kv": {"key": "YQ=="}, "prev_kv": {"key": "YQ==", "value": "Yg=="}}
    )
    assert (put.type, put.prev_kv) == ("PUT", None)
    assert delete.type == "DELETE"
    assert delete.prev_kv is not None
    assert delete.prev_kv.value == b"b"


def test_member_and_status_decode_ids_from_decimal_strings() -> None:
    member = Member.from_json({"ID": "13668033151171901709", "peerURLs": ["http://127.0.0.1:2380"], "isLearner": True})
    assert member == Member(13668033151171901709, "", ["http://127.0.0.1:2380"], [], True)
    status = EndpointStatus.from_json(
        "http://e",
        {
            "header": {"cluster_id": "1", "member_id": "2", "revision": "3", "raft_term": "4"},
            "version": "3.5.1",
            "dbSize": "20480",
            "leader": "2",
            "raftIndex": "5",
            "raftTerm": "4",
        },
    )
    assert (status.member_id, status.cluster_id, status.revision, status.leader, status.db_size) == (2, 1, 3, 2, 20480)
    assert (status.is_learner, status.errors) == (False, [])


def test_compare_builders_produce_gateway_json() -> None:
    assert Compare.create_revision(b"/k", "=", 0).to_json() == {
        "key": base64.b64encode(b"/k").decode(),
        "target": "CREATE",
        "result": "EQUAL",
        "create_revision": "0",
    }
    assert Compare.mod_revision(b"/k", "!=", 5).to_json()["result"] == "NOT_EQUAL"
    assert Compare.version(b"/k", "<", 2).to_json()["version"] == "2"
    assert Compare.value(b"/k", ">", b"v").to_json()["value"] == "dg=="
    with pytest.raises(InvalidInputError):
        Compare.value(b"/k", "=", "text")  # type: ignore[arg-type]


def test_op_builders_produce_gateway_json() -> None:
    assert Op.put(b"/k", b"v", lease=7).to_json() == {"request_put": {"key": "L2s=", "value": "dg==", "lease": "7"}}
    assert Op.delete(b"/p/", prefix=True).to_json() == {"request_delete_range": {"key": "L3Av", "range_end": "L3Aw"}}
    assert Op.range(b"/k").to_json() == {"request_range": {"key": "L2s="}}
    with pytest.raises(InvalidInputError):
        Op.put(b"", b"v")


def test_gateway_errors_keep_etcds_message_and_code() -> None:
    unary = error_from_body("http://e", {"error": "etcdserver: x", "message": "etcdserver: x", "code": 9})
    assert (unary.message, unary.code, unary.endpoint) == ("etcdserver: x", 9, "http://e")
    stream = error_from_body("http://e", {"error": {"grpc_code": 2, "message": "auth: user name is empty"}})
    assert (stream.message, stream.code) == ("auth: user name is empty", 2)
    compacted = error_from_body(
        "http://e", {"message": "etcdserver: mvcc: required revision has been compacted", "code": 11}
    )
    assert isinstance(compacted, CompactedError)


@pytest.mark.parametrize(
    ("version", "prefix"),
    [
        ("3.5.1", "/v3"),
        ("3.4.23", "/v3"),
        ("3.6.0", "/v3"),
        ("4.0.0", "/v3"),
        ("3.3.27", "/v3beta"),
        ("3.2.32", "/v3alpha"),
        ("garbage", "/v3"),
    ],
)
def test_gateway_prefix_follows_the_server_version(version: str, prefix: str) -> None:
    assert _api_prefix_for(version) == prefix


def test_endpoints_are_normalized_and_checked() -> None:
    assert normalize_endpoint(" 127.0.0.1:2379/ ", "http") == "http://127.0.0.1:2379"
    assert normalize_endpoint("10.0.0.1:2379", "https") == "https://10.0.0.1:2379"
    assert normalize_endpoint("https://etcd-1:2379", "http") == "https://etcd-1:2379"
    with pytest.raises(InvalidInputError):
        normalize_endpoint("unix:///run/etcd.sock", "http")
    with pytest.raises(InvalidInputError):
        normalize_endpoint("  ", "http")
