"""The backup and restore plans: what they show before running, and what they refuse."""

from __future__ import annotations

import pytest

from kubectl_state.core.errors import ConnectionFailed, ExitStatus, InvalidInputError, UnsafeOperationError
from kubectl_state.core.lifecycle.planner import plan
from kubectl_state.core.lifecycle.recovery import plan_backup, plan_restore
from kubectl_state.core.lifecycle.topology import Observed, ObservedMember, Topology
from tests.unit.test_lifecycle_plan import api, etcd, running, steps, topo


def test_backup_streams_from_the_leader_then_exports_applies_retention_and_schedules() -> None:
    p = plan_backup(topo("h1 h2 h3"), running("h1 h2 h3", leader="h2"), backup_host="bk", retention="at most 7",
                    schedule="cron: 0 * * * *")
    assert steps(p) == [("snapshot", "h2"), ("export", "lb"), ("retention", "bk"), ("schedule", "bk")]
    assert p.lines()[0] == "1. take an etcd snapshot from h2 (into bk)"
    assert p.notes == ()


def test_backup_without_export_retention_or_schedule_is_the_snapshot_alone() -> None:
    p = plan_backup(topo("h1 h2 h3"), running("h1 h2 h3"), backup_host="bk", export=False)
    assert steps(p) == [("snapshot", "h1")]


def test_backup_falls_back_to_a_healthy_member_and_says_so() -> None:
    p = plan_backup(topo("h1 h2 h3"), running("h1:down h2 h3", leader="h1"), backup_host="bk")
    assert steps(p)[0] == ("snapshot", "h2")
    assert "no healthy leader" in p.notes[0]


def test_backup_of_a_cluster_without_quorum_still_plans_a_snapshot_and_warns() -> None:
    observed = running("h1:down h2:down h3:down", leader="")
    # Answering, but unhealthy (no quorum): started members with names are still a source.
    p = plan_backup(topo("h1 h2 h3"), observed, backup_host="bk")
    assert steps(p)[0] == ("snapshot", "h1")
    assert "may miss the last writes" in p.notes[0]


def test_backup_with_no_member_answering_is_refused() -> None:
    with pytest.raises(ConnectionFailed, match="nothing to take a snapshot from"):
        plan_backup(topo("h1 h2 h3"), Observed(), backup_host="bk")


def test_backup_schedule_cannot_be_installed_and_removed_at_once() -> None:
    with pytest.raises(InvalidInputError):
        plan_backup(topo("h1"), running("h1"), backup_host="bk", schedule="hourly", unschedule=True)


def test_restore_stages_stops_restores_then_starts_everything_in_order() -> None:
    p = plan_restore(topo("h1 h2 h3"), running("h1 h2 h3"), snapshot="/b/x.etcd.db", archive="/b/x.state.tar.gz",
                     backup_host="bk")
    assert steps(p) == [
        ("stage_snapshot", "h1"), ("stage_snapshot", "h2"), ("stage_snapshot", "h3"),
        ("pause_apiserver", "h1"), ("pause_apiserver", "h2"),
        ("stop_member", "h1"), ("stop_member", "h2"), ("stop_member", "h3"),
        ("restore_member", "h1"), ("restore_member", "h2"), ("restore_member", "h3"),
        ("start_restored", "h1, h2, h3"),
        ("start_apiserver", "h1"), ("add_to_endpoint", "h1"), ("start_apiserver", "h2"), ("add_to_endpoint", "h2"),
        ("import", "lb"),
    ]
    assert any("writes made since the snapshot are lost" in n for n in p.notes)


def test_restore_after_a_wipe_starts_the_endpoint_and_has_no_api_server_to_stop() -> None:
    p = plan_restore(topo("h1 h2 h3"), Observed(), snapshot="/b/x.etcd.db")
    assert ("start_endpoint", "lb") in steps(p)
    assert not [a for a, _ in steps(p) if a == "pause_apiserver"]
    assert not any("lost" in n for n in p.notes)
    assert steps(p)[-1] == ("add_to_endpoint", "h2")  # no archive: no import


def test_restore_refuses_while_a_member_outside_the_inventory_runs() -> None:
    observed = running("h1 h2 h3 h9")
    with pytest.raises(UnsafeOperationError, match=r"h9 \(10[0-9a-f]\).*would keep serving the old data") as exc:
        plan_restore(topo("h1 h2 h3"), observed, snapshot="/b/x.etcd.db")
    assert exc.value.exit_status == ExitStatus.UNSAFE


def test_restore_counts_a_member_the_inventory_names_by_peer_url() -> None:
    member = ObservedMember(id=7, name="old-name", peer_urls=("http://h1:2380",), is_learner=False, started=True,
                            healthy=True)
    p = plan_restore(topo("h1"), Observed(members=(member,)), snapshot="/b/x.etcd.db")
    assert ("restore_member", "h1") in steps(p)


@pytest.mark.parametrize("topology", [
    topo("h1 h2 h3", remove="h4"),
    topo("h1 h2 h3", remove_api="h3"),
    Topology(etcd=etcd("h1"), control_plane=api("h1"), endpoint="lb", endpoint_remove="lb0"),
])
def test_restore_refuses_an_inventory_in_the_middle_of_a_scale_or_migration(topology: Topology) -> None:
    with pytest.raises(InvalidInputError, match="finish the scale or migration first"):
        plan_restore(topology, Observed(), snapshot="/b/x.etcd.db")


def test_restore_needs_a_snapshot() -> None:
    with pytest.raises(InvalidInputError, match="restore_snapshot"):
        plan_restore(topo("h1"), Observed(), snapshot="")


def test_backup_and_restore_are_lifecycle_operations_whose_options_are_checked_by_name() -> None:
    assert steps(plan("restore", topo("h1"), Observed(), snapshot="/b/x.etcd.db"))[0] == ("stage_snapshot", "h1")
    assert steps(plan("backup", topo("h1"), running("h1"), backup_host="bk", export=False)) == [("snapshot", "h1")]
    with pytest.raises(InvalidInputError, match="the restore plan takes no option snapshots; it takes: snapshot"):
        plan("restore", topo("h1"), Observed(), snapshots="/b/x.etcd.db")
