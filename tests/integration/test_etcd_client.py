"""EtcdClient against real etcd processes (3.5 from the venv, 3.4 from Debian where installed)."""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from kubectl_state.core.errors import ConnectionFailed, EtcdError, InvalidInputError, TlsVerificationOffWarning
from kubectl_state.core.etcd.client import (
    CompactedError,
    Compare,
    EtcdClient,
    Op,
    WatchEvent,
)
from tests.conftest import EtcdClusterFactory
from tests.etcd_cluster import EtcdCluster, generate_tls

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(params=["3.5", pytest.param("3.4", marks=pytest.mark.etcd34)])
def any_version_client(
    request: pytest.FixtureRequest, etcd_cluster_factory: EtcdClusterFactory
) -> Iterator[EtcdClient]:
    cluster = etcd_cluster_factory(members=1, version=request.param)
    with EtcdClient(cluster.endpoints) as client:
        yield client


@pytest.fixture
def client(etcd_endpoints: list[str]) -> Iterator[EtcdClient]:
    with EtcdClient(etcd_endpoints) as c:
        yield c


# --- keys ------------------------------------------------------------------------------------


def test_put_returns_revision_and_get_returns_value_with_revisions(any_version_client: EtcdClient) -> None:
    rev1 = any_version_client.put(b"/k", b"v1")
    rev2 = any_version_client.put(b"/k", b"v2")
    kv = any_version_client.get(b"/k")
    assert rev2 == rev1 + 1
    assert kv is not None
    assert (kv.key, kv.value, kv.create_revision, kv.mod_revision, kv.version) == (b"/k", b"v2", rev1, rev2, 2)


def test_get_of_missing_key_returns_none(client: EtcdClient) -> None:
    assert client.get(b"/nothing/here") is None


def test_binary_keys_and_values_round_trip(client: EtcdClient) -> None:
    key, value = b"/bin/\x00\xff\x80", bytes(range(256))
    client.put(key, value)
    kv = client.get(key)
    assert kv is not None
    assert (kv.key, kv.value) == (key, value)


def test_get_at_old_revision_returns_old_value(client: EtcdClient) -> None:
    rev = client.put(b"/k", b"old")
    client.put(b"/k", b"new")
    kv = client.get(b"/k", revision=rev)
    assert kv is not None
    assert kv.value == b"old"


def test_prefix_range_returns_only_keys_under_prefix_in_key_order(client: EtcdClient) -> None:
    for key in (b"/a/2", b"/a/1", b"/a/3", b"/a", b"/b/1", b"/a0"):
        client.put(key, b"x")
    result = client.range(b"/a/", prefix=True)
    assert [kv.key for kv in result.kvs] == [b"/a/1", b"/a/2", b"/a/3"]
    assert (result.count, result.more) == (3, False)
    assert result.revision == client.status().revision


def test_range_limit_reports_more_and_total_count(client: EtcdClient) -> None:
    for i in range(5):
        client.put(b"/l/%d" % i, b"x")
    result = client.range(b"/l/", prefix=True, limit=2)
    assert [kv.key for kv in result.kvs] == [b"/l/0", b"/l/1"]
    assert result.more is True
    assert result.count == 5


def test_keys_only_range_returns_keys_without_values(client: EtcdClient) -> None:
    client.put(b"/ko/1", b"value")
    result = client.range(b"/ko/", prefix=True, keys_only=True)
    assert [(kv.key, kv.value) for kv in result.kvs] == [(b"/ko/1", b"")]
    assert result.kvs[0].mod_revision > 0


def test_count_only_range_returns_count_without_keys(client: EtcdClient) -> None:
    for i in range(7):
        client.put(b"/co/%d" % i, b"x")
    result = client.range(b"/co/", prefix=True, count_only=True)
    assert (result.kvs, result.count) == ([], 7)


def test_iter_prefix_pages_through_all_keys_in_order(client: EtcdClient) -> None:
    keys = [b"/p/%03d" % i for i in range(23)]
    for key in reversed(keys):
        client.put(key, key)
    assert [kv.key for kv in client.iter_prefix(b"/p/", page_size=5)] == keys


def test_iter_prefix_reads_every_page_at_the_first_page_revision(client: EtcdClient) -> None:
    for i in range(10):
        client.put(b"/p/%02d" % i, b"before")
    pages = client.iter_prefix(b"/p/", page_size=3)
    first = [next(pages) for _ in range(3)]
    client.put(b"/p/05", b"after")  # a key on a later page changes
    client.put(b"/p/99", b"after")  # a new key after the first page
    client.delete(b"/p/07")  # a key on a later page disappears
    rest = list(pages)
    seen = first + rest
    assert [kv.key for kv in seen] == [b"/p/%02d" % i for i in range(10)]
    assert {kv.value for kv in seen} == {b"before"}


def test_iter_prefix_with_empty_prefix_lists_every_key(client: EtcdClient) -> None:
    client.put(b"a", b"1")
    client.put(b"\xff\xff", b"2")
    assert [kv.key for kv in client.iter_prefix(b"", page_size=1)] == [b"a", b"\xff\xff"]


def test_iter_prefix_keys_only_at_given_revision(client: EtcdClient) -> None:
    rev = client.put(b"/r/1", b"v")
    client.put(b"/r/2", b"v")
    assert [(kv.key, kv.value) for kv in client.iter_prefix(b"/r/", revision=rev, keys_only=True)] == [(b"/r/1", b"")]


def test_delete_prefix_deletes_only_keys_under_prefix(client: EtcdClient) -> None:
    for key in (b"/d/1", b"/d/2", b"/d/3/x", b"/d", b"/e/1"):
        client.put(key, b"x")
    assert client.delete(b"/d/", prefix=True) == 3
    assert [kv.key for kv in client.range(b"/", prefix=True).kvs] == [b"/d", b"/e/1"]
    assert client.delete(b"/d/", prefix=True) == 0


def test_delete_single_key_returns_one(client: EtcdClient) -> None:
    client.put(b"/one", b"x")
    assert client.delete(b"/one") == 1
    assert client.get(b"/one") is None


def test_put_with_str_key_is_refused_before_sending(client: EtcdClient) -> None:
    with pytest.raises(InvalidInputError, match="bytes"):
        client.put("/text", b"x")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        client.get(b"")


def test_range_at_future_revision_raises_etcd_error_with_etcds_message(client: EtcdClient) -> None:
    with pytest.raises(EtcdError, match="future revision") as info:
        client.range(b"/k", revision=10_000)
    assert info.value.code == 11
    assert info.value.endpoint == client.endpoints[0]


# --- transactions ----------------------------------------------------------------------------


def test_txn_compare_and_swap_succeeds_when_mod_revision_matches(any_version_client: EtcdClient) -> None:
    c = any_version_client
    rev = c.put(b"/cas", b"v1")
    result = c.txn([Compare.mod_revision(b"/cas", "=", rev)], [Op.put(b"/cas", b"v2")], [Op.range(b"/cas")])
    assert result.succeeded is True
    assert result.revision == rev + 1
    assert list(result.responses[0]) == ["response_put"]
    kv = c.get(b"/cas")
    assert kv is not None
    assert kv.value == b"v2"


def test_txn_compare_and_swap_fails_on_mod_revision_conflict_and_runs_failure_branch(
    any_version_client: EtcdClient,
) -> None:
    c = any_version_client
    stale = c.put(b"/cas", b"v1")
    current = c.put(b"/cas", b"someone else")
    result = c.txn([Compare.mod_revision(b"/cas", "=", stale)], [Op.put(b"/cas", b"mine")], [Op.range(b"/cas")])
    assert result.succeeded is False
    assert result.revision == current
    [current_kv] = result.responses[0]["response_range"]["kvs"]
    assert (current_kv.value, current_kv.mod_revision) == (b"someone else", current)
    kv = c.get(b"/cas")
    assert kv is not None
    assert kv.value == b"someone else"


def test_txn_create_if_absent_creates_once(client: EtcdClient) -> None:
    def create(value: bytes) -> bool:
        absent = Compare.create_revision(b"/once", "=", 0)
        return client.txn([absent], [Op.put(b"/once", value)], [Op.range(b"/once")]).succeeded

    assert create(b"first") is True
    assert create(b"second") is False
    kv = client.get(b"/once")
    assert kv is not None
    assert (kv.value, kv.version) == (b"first", 1)


def test_txn_delete_with_prev_kv_and_value_compare(client: EtcdClient) -> None:
    client.put(b"/t/1", b"a")
    client.put(b"/t/2", b"b")
    result = client.txn(
        [Compare.value(b"/t/1", "=", b"a"), Compare.version(b"/t/2", ">", 0)],
        [Op.delete(b"/t/", prefix=True, prev_kv=True)],
    )
    assert result.succeeded
    deleted = result.responses[0]["response_delete_range"]
    assert deleted["deleted"] == 2
    assert [kv.value for kv in deleted["prev_kvs"]] == [b"a", b"b"]
    assert deleted["header"]["revision"] == result.revision


def test_txn_with_unknown_comparison_is_refused(client: EtcdClient) -> None:
    with pytest.raises(InvalidInputError, match="comparison"):
        Compare.version(b"/k", "~", 1)


# --- watch -----------------------------------------------------------------------------------


def test_watch_receives_put_and_delete_events_from_start_revision(any_version_client: EtcdClient) -> None:
    c = any_version_client
    c.put(b"/other", b"x")
    first = c.put(b"/w/a", b"1")
    c.put(b"/w/a", b"2")
    c.delete(b"/w/a")
    with c.watch(b"/w/", prefix=True, start_revision=first, prev_kv=True) as watch:
        events = [next(watch) for _ in range(3)]
    assert [(e.type, e.kv.key, e.kv.value, e.kv.mod_revision) for e in events] == [
        ("PUT", b"/w/a", b"1", first),
        ("PUT", b"/w/a", b"2", first + 1),
        ("DELETE", b"/w/a", b"", first + 2),
    ]
    assert events[0].prev_kv is None
    assert events[2].prev_kv is not None
    assert events[2].prev_kv.value == b"2"


def test_watch_from_now_sees_only_later_events(client: EtcdClient) -> None:
    client.put(b"/w/before", b"x")
    with client.watch(b"/w/", prefix=True) as watch:
        rev = client.put(b"/w/after", b"y")
        event = next(watch)
    assert event == WatchEvent("PUT", event.kv, None)
    assert (event.kv.key, event.kv.mod_revision) == (b"/w/after", rev)
    assert watch.revision == rev


def test_watch_from_compacted_revision_raises_compacted_error(any_version_client: EtcdClient) -> None:
    c = any_version_client
    c.put(b"/w/a", b"1")
    rev = c.put(b"/w/a", b"2")
    c.compact(rev)
    with (
        pytest.raises(CompactedError, match="required revision has been compacted") as info,
        c.watch(b"/w/", prefix=True, start_revision=1) as watch,
    ):
        next(watch)
    assert info.value.compact_revision == rev
    assert info.value.code == 11


def test_watch_closed_from_another_thread_ends_iteration(client: EtcdClient) -> None:
    watch = client.watch(b"/quiet/", prefix=True)
    threading.Timer(0.3, watch.close).start()
    started = time.monotonic()
    assert list(watch) == []
    assert time.monotonic() - started < 5
    assert watch.closed


def test_watch_of_single_key_ignores_other_keys(client: EtcdClient) -> None:
    with client.watch(b"/only") as watch:
        client.put(b"/only2", b"x")
        rev = client.put(b"/only", b"y")
        event = next(watch)
    assert (event.kv.key, event.kv.mod_revision) == (b"/only", rev)


# --- compaction and maintenance --------------------------------------------------------------


def test_compact_makes_older_revisions_unreadable(client: EtcdClient) -> None:
    old = client.put(b"/c", b"1")
    new = client.put(b"/c", b"2")
    client.compact(new, physical=True)
    with pytest.raises(CompactedError, match="compacted"):
        client.get(b"/c", revision=old)
    kv = client.get(b"/c", revision=new)
    assert kv is not None
    assert kv.value == b"2"


def test_status_reports_version_leader_and_header_revision(any_version_client: EtcdClient) -> None:
    c = any_version_client
    rev = c.put(b"/s", b"x")
    status = c.status()
    assert status.endpoint == c.endpoints[0]
    assert status.version.startswith(("3.5.", "3.4."))
    assert status.leader == status.member_id != 0
    assert status.cluster_id != 0
    assert status.revision == rev
    assert status.db_size > 0
    assert status.raft_index > 0 and status.raft_term > 0
    assert status.is_learner is False
    assert status.errors == []


def test_member_list_of_single_member_cluster(client: EtcdClient) -> None:
    [member] = client.member_list()
    assert member.name == "m1"
    assert member.client_urls == client.endpoints
    assert member.id == client.status().member_id
    assert member.is_learner is False


def test_alarms_are_empty_on_a_healthy_member(client: EtcdClient) -> None:
    assert client.alarms() == []
    client.alarm_disarm()  # disarming nothing is accepted


def test_defragment_keeps_data(client: EtcdClient) -> None:
    for i in range(50):
        client.put(b"/frag/%d" % i, b"x" * 1000)
    client.delete(b"/frag/", prefix=True)
    client.put(b"/keep", b"v")
    client.defragment(client.endpoints[0])
    kv = client.get(b"/keep")
    assert kv is not None
    assert kv.value == b"v"


def test_hash_kv_is_reported_unimplemented_by_the_3_5_gateway(client: EtcdClient) -> None:
    with pytest.raises(EtcdError, match="HashKV") as info:
        client.hash_kv(client.endpoints[0])
    assert info.value.code == 12


def test_snapshot_stream_yields_the_database_with_its_sha256_trailer(client: EtcdClient, tmp_path: Path) -> None:
    client.put(b"/snap", b"x" * 100_000)
    blob = b"".join(client.snapshot_stream(client.endpoints[0]))
    db, trailer = blob[:-32], blob[-32:]
    assert hashlib.sha256(db).digest() == trailer
    assert len(db) > 100_000
    assert len(db) % 4096 == 0  # whole bbolt pages


def test_snapshot_goes_over_grpc_with_the_same_bytes_as_the_gateway(client: EtcdClient) -> None:
    client.put(b"/snap", os.urandom(300_000))
    via_grpc = b"".join(client.snapshot_stream(client.endpoints[0]))
    assert client.last_snapshot_via == "grpc"
    with http_only_proxy(client.endpoints[0]) as proxy, EtcdClient([proxy]) as proxied:
        via_gateway = b"".join(proxied.snapshot_stream(proxy))
        # HTTP/1.1 in front of etcd: gRPC cannot pass, the JSON gateway can.
        assert (proxied.last_snapshot_via or "").startswith(f"gateway (gRPC to {proxy} failed")
    assert hashlib.sha256(via_grpc[:-32]).digest() == via_grpc[-32:]
    assert via_gateway == via_grpc  # nothing was written in between: the same database


@contextlib.contextmanager
def http_only_proxy(upstream: str) -> Iterator[str]:
    """A plain HTTP/1.1 forwarder to `upstream` (as some load balancers are): no HTTP/2, so no gRPC."""
    session = requests.Session()

    class Forward(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "authorization")}
            with session.request(self.command, upstream + self.path, data=body, headers=headers,
                                 stream=True) as answer:
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("Content-Type", "application/json"))
                self.send_header("Connection", "close")
                self.end_headers()
                for chunk in answer.iter_content(chunk_size=65536):
                    self.wfile.write(chunk)
            self.close_connection = True

        do_GET = do_POST

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Forward)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        session.close()


def test_snapshot_stream_can_be_abandoned_early(client: EtcdClient) -> None:
    client.put(b"/snap", b"x" * 200_000)
    chunks = client.snapshot_stream(client.endpoints[0])
    assert next(chunks)
    chunks.close()  # type: ignore[attr-defined]
    assert client.get(b"/snap") is not None


# --- endpoints and failures -------------------------------------------------------------------


def test_unreachable_endpoints_raise_connection_failed_naming_them() -> None:
    endpoints = ["http://127.0.0.1:9", "http://127.0.0.1:7"]
    with EtcdClient(endpoints, timeout=2) as client, pytest.raises(ConnectionFailed) as info:
        client.get(b"/k")
    message = str(info.value)
    assert all(e in message for e in endpoints)
    assert "refused" in message


def test_refused_first_endpoint_is_skipped_for_reads_and_writes(etcd_endpoints: list[str]) -> None:
    with EtcdClient(["http://127.0.0.1:9", *etcd_endpoints], timeout=2) as client:
        rev = client.put(b"/fo", b"x")
        kv = client.get(b"/fo")
        assert kv is not None
        assert kv.mod_revision == rev


def test_bare_host_port_endpoints_mean_http(etcd_endpoints: list[str]) -> None:
    bare = etcd_endpoints[0].removeprefix("http://")
    with EtcdClient([bare + "/"]) as client:
        assert client.endpoints == etcd_endpoints
        client.put(b"/bare", b"x")


def test_client_refuses_bad_configuration() -> None:
    with pytest.raises(InvalidInputError):
        EtcdClient([])
    with pytest.raises(InvalidInputError):
        EtcdClient(["ftp://127.0.0.1:2379"])
    with pytest.raises(InvalidInputError):
        EtcdClient(["http://127.0.0.1:2379"], username="root")
    with pytest.raises(InvalidInputError, match="does not exist"):
        EtcdClient(["https://127.0.0.1:2379"], ca_file="/nonexistent/ca.crt")


# --- auth --------------------------------------------------------------------------------------

PASSWORD = "s3cret-Pa55word"


@pytest.fixture(params=["3.5", pytest.param("3.4", marks=pytest.mark.etcd34)])
def auth_cluster(request: pytest.FixtureRequest, etcd_cluster_factory: EtcdClusterFactory) -> EtcdCluster:
    cluster = etcd_cluster_factory(members=1, version=request.param)
    cluster.etcdctl("user", "add", f"root:{PASSWORD}")
    cluster.etcdctl("auth", "enable")
    return cluster


def test_auth_client_with_password_reads_writes_and_watches(auth_cluster: EtcdCluster) -> None:
    with EtcdClient(auth_cluster.endpoints, username="root", password=PASSWORD) as client:
        rev = client.put(b"/auth", b"x")
        kv = client.get(b"/auth")
        assert kv is not None
        assert kv.mod_revision == rev
        with client.watch(b"/auth", start_revision=rev) as watch:
            assert next(watch).kv.value == b"x"
        assert b"".join(client.snapshot_stream(auth_cluster.endpoints[0]))
        assert client.last_snapshot_via == "grpc"  # the token went along as gRPC metadata


def test_auth_client_without_credentials_is_refused(auth_cluster: EtcdCluster) -> None:
    with EtcdClient(auth_cluster.endpoints) as client, pytest.raises(EtcdError, match="user name is empty"):
        client.put(b"/auth", b"x")


def test_auth_wrong_password_is_refused_without_revealing_either_password(auth_cluster: EtcdCluster) -> None:
    wrong = "not-the-Pa55word"
    with EtcdClient(auth_cluster.endpoints, username="root", password=wrong) as client:
        with pytest.raises(EtcdError) as info:
            client.get(b"/auth")
        assert "authentication failed" in str(info.value)
        for text in (str(info.value), repr(info.value), repr(client), str(info.value.__cause__)):
            assert wrong not in text
            assert PASSWORD not in text


def test_auth_token_invalidated_by_a_restart_is_renewed(auth_cluster: EtcdCluster) -> None:
    # Simple tokens live in the member's memory: a restart invalidates every token handed out.
    with EtcdClient(auth_cluster.endpoints, username="root", password=PASSWORD) as client:
        client.put(b"/auth", b"1")
        auth_cluster.stop_member("m1")
        auth_cluster.start_member("m1")
        client.put(b"/auth", b"2")
        auth_cluster.stop_member("m1")
        auth_cluster.start_member("m1")
        with client.watch(b"/auth") as watch:
            rev = client.put(b"/auth", b"3")
            assert next(watch).kv.mod_revision == rev
        auth_cluster.stop_member("m1")
        auth_cluster.start_member("m1")
        assert b"".join(client.snapshot_stream(auth_cluster.endpoints[0]))
        assert client.last_snapshot_via == "grpc"  # renewed after gRPC refused the stale token


# --- TLS ---------------------------------------------------------------------------------------


@pytest.fixture
def tls_cluster(etcd_cluster_factory: EtcdClusterFactory, tmp_path: Path) -> EtcdCluster:
    """--cert-file, --key-file and --trusted-ca-file: TLS with client certificates required."""
    return etcd_cluster_factory(members=1, version="3.5", tls=generate_tls(tmp_path / "pki"))


def _tls_client(cluster: EtcdCluster, **overrides: object) -> EtcdClient:
    assert cluster.tls is not None
    options: dict[str, object] = {
        "ca_file": cluster.tls.ca_file,
        "cert_file": cluster.tls.client_cert_file,
        "key_file": cluster.tls.client_key_file,
        "timeout": 3,
    }
    options.update(overrides)
    return EtcdClient(cluster.endpoints, **options)  # type: ignore[arg-type]


def test_tls_client_with_ca_file_and_client_certificate_works(tls_cluster: EtcdCluster) -> None:
    assert tls_cluster.endpoints[0].startswith("https://")
    with _tls_client(tls_cluster) as client:
        client.put(b"/tls", b"x")
        with client.watch(b"/tls", start_revision=1) as watch:
            assert next(watch).kv.value == b"x"
            threading.Timer(0.3, watch.close).start()
            assert list(watch) == []  # closing a TLS watch from another thread ends it too
        blob = b"".join(client.snapshot_stream(tls_cluster.endpoints[0]))
        assert hashlib.sha256(blob[:-32]).digest() == blob[-32:]
        assert client.last_snapshot_via == "grpc"  # with the same CA and client certificate


def test_tls_client_without_ca_file_fails_certificate_verification(tls_cluster: EtcdCluster) -> None:
    with _tls_client(tls_cluster, ca_file=None) as client, pytest.raises(ConnectionFailed) as info:
        client.get(b"/tls")
    assert "certificate verify failed" in str(info.value)
    assert tls_cluster.endpoints[0] in str(info.value)


def test_tls_client_without_client_certificate_is_rejected(tls_cluster: EtcdCluster) -> None:
    with _tls_client(tls_cluster, cert_file=None, key_file=None) as client, pytest.raises(ConnectionFailed):
        client.get(b"/tls")


def test_tls_verify_false_skips_server_verification_only_when_asked(tls_cluster: EtcdCluster) -> None:
    # One warning of our own that says verification is off, instead of urllib3's per connection.
    with pytest.warns(TlsVerificationOffWarning, match="TLS verification is off"), \
            _tls_client(tls_cluster, ca_file=None, verify=False) as c:
        c.put(b"/tls", b"x")
        # grpcio cannot skip certificate checks: the snapshot goes through the gateway instead.
        blob = b"".join(c.snapshot_stream(tls_cluster.endpoints[0]))
        assert hashlib.sha256(blob[:-32]).digest() == blob[-32:]
        assert c.last_snapshot_via == "gateway (gRPC not available here)"


def test_tls_without_client_certificates_needs_only_the_ca(
    etcd_cluster_factory: EtcdClusterFactory, tmp_path: Path
) -> None:
    tls = generate_tls(tmp_path / "pki")
    cluster = etcd_cluster_factory(members=1, tls=tls, client_cert_auth=False)
    with EtcdClient(cluster.endpoints, ca_file=tls.ca_file) as client:
        client.put(b"/tls", b"x")
        assert client.status().version.startswith("3.5.")
