"""`kubectl state etcd member|status|health|alarm|compact|defrag` against real etcd clusters."""

from __future__ import annotations

import io
import json
import threading
import time
from pathlib import Path

import pytest

from kubectl_state.cli.env import Environment
from kubectl_state.cli.main import main
from kubectl_state.core.errors import ConnectionFailed, EtcdError
from kubectl_state.core.etcd.client import EtcdClient
from tests.conftest import EtcdClusterFactory

pytestmark = pytest.mark.timeout(120)


def cli(*argv: str, environ: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    env = Environment(stdout=out, stderr=err, environ=dict(environ or {}))
    code = main(["etcd", *argv], env)
    return code, out.getvalue(), err.getvalue()


def ids(endpoints: list[str]) -> dict[str, int]:
    with EtcdClient(endpoints) as c:
        return {m.name: m.id for m in c.member_list()}


class Writer(threading.Thread):
    """Puts /load/<n> in a loop; remembers which puts etcd acknowledged."""

    def __init__(self, endpoints: list[str]) -> None:
        super().__init__(daemon=True)
        self.client = EtcdClient(endpoints, timeout=5)
        self.acked: list[bytes] = []
        self.failures = 0
        self.halt = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.halt.is_set():
            key = f"/load/{n:06d}".encode()
            n += 1
            try:
                self.client.put(key, b"v" * 100)
            except (EtcdError, ConnectionFailed):
                # Not acknowledged: it may or may not be there, and is not checked.
                self.failures += 1
                time.sleep(0.05)
                continue
            self.acked.append(key)
            time.sleep(0.002)

    def stop(self) -> None:
        self.halt.set()
        self.join(timeout=30)
        self.client.close()


def test_member_add_learner_start_promote_remove_under_write_load_keeps_every_acknowledged_write(
    etcd_cluster_factory: EtcdClusterFactory,
) -> None:
    cluster = etcd_cluster_factory(members=3)
    endpoints = cluster.endpoints
    writer = Writer(endpoints)
    writer.start()
    try:
        new = cluster.reserve_member("m4")
        code, out, err = cli("member", "add", "m4", "--peer-urls", new.peer_url, "--endpoints", ",".join(endpoints),
                             "-o", "json")
        assert code == 0, err
        added = json.loads(out)
        assert added["isLearner"] is True
        assert f"m4={new.peer_url}" in added["initialCluster"]
        assert added["initialCluster"].count("=") == 4

        cluster.start_new_member("m4", initial_cluster=added["initialCluster"])
        code, out, err = cli("member", "promote", "m4", "--timeout", "60", "--endpoints", ",".join(endpoints))
        assert code == 0, err
        assert "promoted to a voting member" in out

        code, out, err = cli("member", "list", "--endpoints", endpoints[1], "-o", "json")
        assert code == 0, err
        members = {m["name"]: m for m in json.loads(out)["members"]}
        assert set(members) == {"m1", "m2", "m3", "m4"}
        assert not members["m4"]["isLearner"]
        assert all(m["healthy"] for m in members.values())

        code, out, err = cli("member", "remove", "m1", "--endpoints", ",".join(endpoints[1:]))
        assert code == 0, err
        assert "removed" in out
        time.sleep(0.5)  # let the writer go on against the changed membership
    finally:
        writer.stop()
    cluster.stop_member("m1")

    survivors = [m.client_url for m in cluster.members if m.name != "m1"]
    with EtcdClient(survivors) as c:
        assert {m.name for m in c.member_list()} == {"m2", "m3", "m4"}
        stored = {kv.key for kv in c.iter_prefix(b"/load/", keys_only=True)}
    assert len(writer.acked) > 50
    missing = [k for k in writer.acked if k not in stored]
    assert missing == []


def test_remove_from_two_member_cluster_with_one_down_is_refused_and_nothing_removed(
    etcd_cluster_factory: EtcdClusterFactory,
) -> None:
    cluster = etcd_cluster_factory(members=2)
    before = ids(cluster.endpoints)
    cluster.stop_member("m2")
    for target in ("m1", "m2"):
        code, out, err = cli("member", "remove", target, "--endpoints", cluster.endpoints[0], "--command-timeout", "3",
                             "--settle", "2")
        assert code == 6, err
        assert out == ""
        assert "refusing to remove etcd member" in err and "quorum" in err
    with EtcdClient(cluster.endpoints[:1]) as c:
        assert {m.name: m.id for m in c.member_list()} == before


def test_remove_of_healthy_member_while_another_is_down_is_refused_but_the_dead_one_can_go(
    etcd_cluster_factory: EtcdClusterFactory,
) -> None:
    cluster = etcd_cluster_factory(members=3)
    cluster.stop_member("m3")
    live = ",".join(cluster.endpoints[:2])
    code, _, err = cli("member", "remove", "m1", "--endpoints", live, "--settle", "2")
    assert code == 6
    assert "only 1 healthy" in err and "m3" in err
    assert "waiting for etcd member(s) m3" in err
    # Repairing is removing the dead member first: 2 healthy of 2 left.
    m3 = ids(cluster.endpoints[:2])["m3"]
    code, _, err = cli("member", "remove", f"{m3:x}", "--endpoints", live)
    assert code == 0, err
    assert set(ids(cluster.endpoints[:2])) == {"m1", "m2"}


def test_remove_refused_only_for_a_member_briefly_down_goes_ahead_once_it_answers_again(
    etcd_cluster_factory: EtcdClusterFactory,
) -> None:
    # After a membership change the other members can fail /health for a moment; a removal
    # checked in that moment waits (--settle) instead of failing the whole scale.
    cluster = etcd_cluster_factory(members=3)
    cluster.stop_member("m3")
    back = threading.Timer(3.0, lambda: cluster.start_member("m3"))
    back.start()
    try:
        started = time.monotonic()
        code, out, err = cli("member", "remove", "m1", "--endpoints", ",".join(cluster.endpoints[1:]),
                             "--settle", "60")
    finally:
        back.join()
    assert code == 0, err
    assert "waiting for etcd member(s) m3" in err
    assert time.monotonic() - started >= 3.0
    assert "removed" in out
    assert set(ids(cluster.endpoints[1:])) == {"m2", "m3"}


def test_remove_that_no_health_can_make_safe_is_refused_without_waiting(
    etcd_cluster_factory: EtcdClusterFactory,
) -> None:
    cluster = etcd_cluster_factory(members=1)
    started = time.monotonic()
    code, _, err = cli("member", "remove", "m1", "--endpoints", cluster.endpoints[0], "--settle", "60")
    assert code == 6
    assert "last voting member" in err
    assert "waiting" not in err
    assert time.monotonic() - started < 30


def test_remove_from_cluster_without_quorum_is_refused_even_for_a_dead_member(
    etcd_cluster_factory: EtcdClusterFactory,
) -> None:
    cluster = etcd_cluster_factory(members=3)
    before = ids(cluster.endpoints)
    cluster.stop_member("m2")
    cluster.stop_member("m3")
    code, _, err = cli("member", "remove", "m3", "--endpoints", cluster.endpoints[0], "--command-timeout", "3",
                       "--settle", "2")
    assert code == 6
    assert "no quorum" in err and "0 of 3" in err
    with EtcdClient(cluster.endpoints[:1]) as c:
        assert {m.name: m.id for m in c.member_list()} == before


def test_status_health_alarm_compact_defrag_commands(etcd_cluster_factory: EtcdClusterFactory) -> None:
    cluster = etcd_cluster_factory(members=3)
    eps = ",".join(cluster.endpoints)
    with EtcdClient(cluster.endpoints) as c:
        for i in range(20):
            c.put(b"/c/k", str(i).encode())
        revision = c.status().revision

    code, out, err = cli("status", "--endpoints", eps, "-o", "json")
    assert code == 0, err
    rows = json.loads(out)["endpoints"]
    assert len(rows) == 3 and sum(r["isLeader"] for r in rows) == 1
    code, out, _ = cli("status", "--endpoints", cluster.endpoints[0], "--cluster")
    assert code == 0 and out.startswith("ENDPOINT") and len(out.splitlines()) == 4

    code, out, _ = cli("health", "--endpoints", eps)
    assert code == 0 and out.count("healthy") == 3
    code, out, _ = cli("alarm", "list", "--endpoints", eps)
    assert (code, out) == (0, "No active alarms.\n")
    code, out, err = cli("compact", "--endpoints", eps, "--revision", str(revision - 5), "-o", "json")
    assert code == 0, err
    assert json.loads(out) == {"compacted": revision - 5}
    code, out, _ = cli("defrag", "--endpoints", eps)
    assert code == 0 and out.count("Finished defragmenting") == 3

    cluster.stop_member("m3")
    code, out, _ = cli("health", "--endpoints", eps, "--command-timeout", "2")
    assert code == 1
    assert out.count("unhealthy") == 1


def test_password_never_shown_even_at_v9(etcd_cluster_factory: EtcdClusterFactory, tmp_path: Path) -> None:
    secret = "s3cr3t-Pa55word"
    cluster = etcd_cluster_factory(members=1)
    cluster.etcdctl("user", "add", "root", f"--new-user-password={secret}")
    cluster.etcdctl("auth", "enable")
    password_file = tmp_path / "pw"
    password_file.write_text(secret + "\n")
    ep = cluster.endpoints[0]

    outputs = []
    code, out, err = cli("status", "--endpoints", ep, "--user", "root", "--password-file", str(password_file),
                         "-v", "9")
    assert code == 0, err
    outputs += [out, err]
    code, out, err = cli("member", "list", "--endpoints", ep, "--user", "root", "-v", "9",
                         environ={"ETCDCTL_PASSWORD": secret})
    assert code == 0, err
    outputs += [out, err]
    # Wrong password: refused, and neither password appears in the error or the traceback.
    code, out, err = cli("member", "list", "--endpoints", ep, "--user", f"root:{secret}x", "-v", "9")
    assert code == 5
    assert "authentication failed" in err
    outputs += [out, err]
    code, out, err = cli("status", "--endpoints", ep, "--user", "root")
    assert code == 2 and "--password-file" in err
    outputs += [out, err]
    for text in outputs:
        assert secret not in text
