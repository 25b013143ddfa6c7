"""The real-etcd test bed (tests/etcd_cluster.py) and the client's cluster operations on it."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import pytest

from kubectl_state.core.errors import EtcdError
from kubectl_state.core.etcd.client import EtcdClient, Member
from tests.conftest import EtcdClusterFactory
from tests.etcd_cluster import EtcdCluster, EtcdStartError, kill_leftover_processes

pytestmark = pytest.mark.timeout(90)

VERSIONS = ["3.5", pytest.param("3.4", marks=pytest.mark.etcd34)]


@pytest.mark.parametrize("version", VERSIONS)
def test_three_member_cluster_forms_and_replicates(etcd_cluster_factory: EtcdClusterFactory, version: str) -> None:
    cluster = etcd_cluster_factory(members=3, version=version)
    first, _, third = cluster.endpoints
    with EtcdClient([first]) as one, EtcdClient([third]) as three:
        rev = one.put(b"/replicated", b"through member 1")
        kv = three.get(b"/replicated")
        assert kv is not None
        assert (kv.value, kv.mod_revision) == (b"through member 1", rev)
        members = three.member_list()
        assert sorted(m.name for m in members) == ["m1", "m2", "m3"]
        assert {m.client_urls[0] for m in members} == set(cluster.endpoints)
        assert three.status().version.startswith(version + ".")


def test_single_member_fixture_serves_on_runtime_loopback_port(etcd_endpoints: list[str]) -> None:
    [endpoint] = etcd_endpoints
    assert endpoint.startswith("http://127.0.0.1:")
    assert not endpoint.endswith(":2379")
    with EtcdClient(etcd_endpoints) as client:
        assert client.status().version.startswith("3.5.")


def test_close_leaves_no_process_and_no_data_dir() -> None:
    cluster = EtcdCluster(members=3).start()
    processes = list(cluster.processes)
    data_dirs = [m.data_dir for m in cluster.members]
    assert all(os.path.isdir(d) for d in data_dirs)
    cluster.close()
    assert all(p.poll() is not None for p in processes)
    assert not any(os.path.exists(d) for d in data_dirs)
    assert not os.path.exists(cluster.base_dir)
    cluster.close()  # idempotent


def test_failed_start_reports_the_end_of_the_member_log() -> None:
    cluster = EtcdCluster(members=1, extra_args=["--no-such-flag"])
    with pytest.raises(EtcdStartError, match="no-such-flag"):
        cluster.start()
    assert not os.path.exists(cluster.base_dir)


def test_leftover_processes_are_killed_by_the_safety_net() -> None:
    cluster = EtcdCluster(members=1).start()
    try:
        [process] = cluster.processes
        assert process.pid in kill_leftover_processes()
        assert process.poll() is not None
    finally:
        cluster.close()


def test_stopped_member_keeps_its_data_when_started_again(etcd_cluster_factory: EtcdClusterFactory) -> None:
    cluster = etcd_cluster_factory(members=1)
    with EtcdClient(cluster.endpoints, timeout=2) as client:
        rev = client.put(b"/durable", b"x")
        cluster.stop_member("m1")
        assert not cluster.member("m1").running
        cluster.start_member("m1")
        kv = client.get(b"/durable")
        assert kv is not None
        assert kv.mod_revision == rev


# --- failover ----------------------------------------------------------------------------------


def test_reads_and_writes_fail_over_when_first_endpoint_is_stopped(
    etcd_cluster_factory: EtcdClusterFactory,
) -> None:
    cluster = etcd_cluster_factory(members=3)
    with EtcdClient(cluster.endpoints, timeout=3) as client:
        rev = client.put(b"/fo", b"before")
        cluster.stop_member("m1")
        kv = client.get(b"/fo")
        assert kv is not None
        assert kv.mod_revision == rev
        assert client.status().endpoint != cluster.endpoints[0]
        # A refused connection never carried the write, so trying the next member is safe.
        client.put(b"/fo", b"after")
        assert sorted(m.name for m in client.member_list()) == ["m1", "m2", "m3"]


def test_reads_fail_over_when_first_endpoint_was_killed(etcd_cluster_factory: EtcdClusterFactory) -> None:
    cluster = etcd_cluster_factory(members=3)
    with EtcdClient(cluster.endpoints, timeout=3) as client:
        client.put(b"/k", b"v")
        cluster.kill_member("m1")
        kv = client.get(b"/k")
        assert kv is not None
        assert kv.value == b"v"


# --- membership --------------------------------------------------------------------------------


def _promote_when_caught_up(client: EtcdClient, member_id: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.member_promote(member_id)
            return
        except EtcdError as exc:
            if "in sync with leader" not in exc.message or time.monotonic() > deadline:
                raise
        time.sleep(0.2)


def test_learner_promotion_is_refused_before_the_learner_runs(etcd_cluster_factory: EtcdClusterFactory) -> None:
    cluster = etcd_cluster_factory(members=1)
    with EtcdClient(cluster.endpoints) as client:
        spare = cluster.reserve_member("m2")
        learner = client.member_add([spare.peer_url], learner=True)
        assert learner.is_learner
        assert learner.peer_urls == [spare.peer_url]
        assert learner.name == ""  # not started yet
        with pytest.raises(EtcdError, match="in sync with leader") as info:
            client.member_promote(learner.id)
        assert info.value.code == 9  # FailedPrecondition


@pytest.mark.parametrize("version", VERSIONS)
def test_learner_joins_and_is_promoted_once_started(etcd_cluster_factory: EtcdClusterFactory, version: str) -> None:
    cluster = etcd_cluster_factory(members=1, version=version)
    with EtcdClient(cluster.endpoints) as client:
        client.put(b"/before-join", b"x")
        spare = cluster.reserve_member("m2")
        learner = client.member_add([spare.peer_url], learner=True)
        cluster.start_new_member("m2", state="existing")
        _promote_when_caught_up(client, learner.id)
        members = {m.id: m for m in client.member_list()}
        assert members[learner.id].is_learner is False
        assert members[learner.id].name == "m2"
        cluster.wait_healthy()
        with EtcdClient([spare.client_url]) as on_new:
            kv = on_new.get(b"/before-join")
            assert kv is not None
            assert not on_new.status().is_learner


def _leader_and_followers(client: EtcdClient) -> tuple[Member, list[Member]]:
    leader_id = client.status().leader
    members = client.member_list()
    return next(m for m in members if m.id == leader_id), [m for m in members if m.id != leader_id]


def _retry_while_unhealthy(action: Callable[[], None], timeout: float = 20) -> None:
    # etcd refuses membership changes until the remaining members have been connected for
    # 5 seconds ("unhealthy cluster"), so a cluster that just formed needs a moment.
    deadline = time.monotonic() + timeout
    while True:
        try:
            action()
            return
        except EtcdError as exc:
            if "unhealthy cluster" not in exc.message or time.monotonic() > deadline:
                raise
        time.sleep(0.25)


def test_member_remove_drops_a_follower_and_refuses_a_second_time(etcd_cluster_factory: EtcdClusterFactory) -> None:
    cluster = etcd_cluster_factory(members=3)
    with EtcdClient(cluster.endpoints, timeout=5) as client:
        leader, followers = _leader_and_followers(client)
        gone = followers[0]
        _retry_while_unhealthy(lambda: client.member_remove(gone.id))
        cluster.stop_member(gone.name)
        assert sorted(m.name for m in client.member_list()) == sorted(m.name for m in [leader, *followers[1:]])
        # etcd itself would never answer a second removal of the same ID; the client says so at once.
        started = time.monotonic()
        with pytest.raises(EtcdError, match="member not found") as info:
            client.member_remove(gone.id)
        assert info.value.code == 5
        assert time.monotonic() - started < 2
        client.put(b"/after-remove", b"x")


def test_move_leader_then_remove_the_old_leader(etcd_cluster_factory: EtcdClusterFactory) -> None:
    cluster = etcd_cluster_factory(members=3)
    with EtcdClient(cluster.endpoints, timeout=5) as client:
        leader, followers = _leader_and_followers(client)
        client.move_leader(followers[0].id)
        assert client.status().leader == followers[0].id
        _retry_while_unhealthy(lambda: client.member_remove(leader.id))
        # A removed member shuts itself down; until it has, requests to it may be cut off.
        cluster.stop_member(leader.name)
        assert sorted(m.name for m in client.member_list()) == sorted(f.name for f in followers)
        client.put(b"/after-remove", b"x")
