"""The migrate planner: a control plane moved to new hosts, the endpoint with it, refused when unsafe."""

from __future__ import annotations

import dataclasses

import pytest

from kubectl_state.core.errors import InvalidInputError, UnsafeOperationError
from kubectl_state.core.lifecycle.observe import config_backends
from kubectl_state.core.lifecycle.planner import OPERATIONS, PLANNERS, plan
from kubectl_state.core.lifecycle.topology import Observed, Topology
from tests.unit.test_lifecycle_plan import api, etcd, running, steps

OLD = "h1 h2 h3"


def moved(endpoint_remove: str = "lb-old", *, replicas: str = "h4 h5", members: str = "h4 h5 h6") -> Topology:
    """etcd h1-h3 -> h4-h6, replicas h1 h2 -> h4 h5, the endpoint lb-old -> lb-new."""
    return Topology(etcd=etcd(*members.split()), control_plane=api(*replicas.split()), endpoint="lb-new",
                    etcd_remove=etcd(*OLD.split()), control_plane_remove=api("h1", "h2"),
                    endpoint_remove=endpoint_remove)


def before_the_move(spec: str = OLD) -> Observed:
    """The old control plane serves behind lb-old; nothing runs on lb-new yet."""
    old = running(spec)
    return dataclasses.replace(old, backends={}, endpoint_running=False,
                               leaving_backends=old.backends, leaving_endpoint_running=True)


def test_migrate_is_a_planner_operation() -> None:
    assert "migrate" in OPERATIONS and "migrate" in PLANNERS


def test_migrate_joins_new_members_fills_the_new_endpoint_before_the_old_stops_then_takes_the_old_out() -> None:
    p = plan("migrate", moved(), before_the_move())
    assert steps(p) == [
        ("add_learner", "h4"), ("start_member", "h4"), ("promote", "h4"),
        ("add_learner", "h5"), ("start_member", "h5"), ("promote", "h5"),
        ("add_learner", "h6"), ("start_member", "h6"), ("promote", "h6"),
        ("start_endpoint", "lb-new"),
        ("start_apiserver", "h4"), ("add_to_endpoint", "h4"), ("start_apiserver", "h5"), ("add_to_endpoint", "h5"),
        ("stop_endpoint", "lb-old"),
        ("stop_apiserver", "h1"), ("stop_apiserver", "h2"),
        ("remove_member", "h1"), ("stop_and_wipe", "h1"), ("remove_member", "h2"), ("stop_and_wipe", "h2"),
        ("remove_member", "h3"), ("stop_and_wipe", "h3"),
    ]
    assert p.operation == "migrate"
    assert "start the API endpoint (HAProxy) on lb-new (it moves here from lb-old)" in p.lines()[9]
    assert p.lines()[14].endswith("on lb-old and wipe its files (its clients move to lb-new)")


def test_migrate_with_the_endpoint_staying_moves_replicas_through_it() -> None:
    topology = dataclasses.replace(moved(""), endpoint="lb")
    p = plan("migrate", topology, running(OLD))
    assert steps(p)[9:] == [
        ("start_apiserver", "h4"), ("add_to_endpoint", "h4"), ("start_apiserver", "h5"), ("add_to_endpoint", "h5"),
        ("remove_from_endpoint", "h1"), ("stop_apiserver", "h1"),
        ("remove_from_endpoint", "h2"), ("stop_apiserver", "h2"),
        ("remove_member", "h1"), ("stop_and_wipe", "h1"), ("remove_member", "h2"), ("stop_and_wipe", "h2"),
        ("remove_member", "h3"), ("stop_and_wipe", "h3"),
    ]


def test_a_replica_that_stays_only_joins_the_new_endpoint() -> None:
    topology = dataclasses.replace(moved(), control_plane=api("h1", "h4"), control_plane_remove=api("h2"))
    p = plan("migrate", topology, before_the_move(), outdated_apiservers=["h1"])
    assert steps(p)[9:15] == [
        ("start_endpoint", "lb-new"), ("add_to_endpoint", "h1"),
        ("start_apiserver", "h4"), ("add_to_endpoint", "h4"),
        # Its etcd servers change: replaced by surge before the old endpoint stops and any member goes.
        ("replace_apiserver", "h1"), ("stop_endpoint", "lb-old"),
    ]
    assert p.steps[10].detail == "it serves behind lb-old"


def test_a_rerun_after_the_move_plans_nothing() -> None:
    after = running("h4 h5 h6", replicas="h4 h5", leader="h4")
    p = plan("migrate", moved(), after)
    assert p.empty and p.lines() == ["migrate: nothing to do"]


def test_a_rerun_after_an_interrupted_move_finishes_it() -> None:
    # Stopped after h1 was removed: the old endpoint and its replicas are gone already.
    now = running("h2 h3 h4 h5 h6", replicas="h4 h5", leader="h4")
    p = plan("migrate", moved(), now)
    assert steps(p) == [
        ("remove_member", "h2"), ("stop_and_wipe", "h2"), ("remove_member", "h3"), ("stop_and_wipe", "h3"),
    ]


def test_migrate_refuses_a_degraded_cluster_before_anything_runs() -> None:
    with pytest.raises(UnsafeOperationError, match=r"refusing to remove etcd member h1 .*h3 \(103\) are not healthy"
                       r".*then migrate"):
        plan("migrate", moved(), before_the_move("h1 h2 h3:down"))


def test_migrate_finishes_a_new_member_an_earlier_run_added_but_never_started() -> None:
    p = plan("migrate", moved(), before_the_move("h1 h2 h3 h4:new"))
    assert steps(p)[:5] == [("start_member", "h4"), ("promote", "h4"),
                            ("add_learner", "h5"), ("start_member", "h5"), ("promote", "h5")]


def test_migrate_refuses_to_take_the_old_members_out_while_new_voters_are_down() -> None:
    # An earlier run promoted h4 and h5, which are down now: taking h1-h3 out would leave the
    # cluster to them. The first removal is refused, so nothing at all is planned.
    with pytest.raises(UnsafeOperationError, match=r"refusing to remove etcd member h1 .*h4 \(104\), h5 \(105\) "
                       r"are not healthy"):
        plan("migrate", moved(), before_the_move("h1 h2 h3 h4:down h5:down"))


def test_migrate_refuses_to_start_on_a_cluster_without_quorum() -> None:
    with pytest.raises(UnsafeOperationError, match="refusing to add a learner: the cluster has no quorum"):
        plan("migrate", moved(), before_the_move("h1 h2:down h3:down"))


def test_migrate_refuses_members_the_inventory_does_not_mention() -> None:
    with pytest.raises(UnsafeOperationError, match=r"refusing to migrate the control plane: etcd member\(s\) h9"):
        plan("migrate", moved(), before_the_move("h1 h2 h3 h9"))


def test_migrate_refuses_to_move_the_endpoint_with_no_replica_to_fill_it() -> None:
    topology = dataclasses.replace(moved(), control_plane=(), control_plane_remove=api("h1", "h2"))
    with pytest.raises(UnsafeOperationError, match="the new endpoint would have no API server to serve"):
        plan("migrate", topology, before_the_move())


def test_migrate_needs_a_cluster() -> None:
    with pytest.raises(UnsafeOperationError, match="refusing to migrate the control plane: no etcd member"):
        plan("migrate", moved(), Observed())


def test_the_endpoint_cannot_be_kept_and_removed() -> None:
    with pytest.raises(InvalidInputError, match="api_endpoint lb-new is listed twice"):
        moved("lb-new")


def test_the_old_endpoints_backends_come_from_its_configuration() -> None:
    config = ("global\n    stats socket /x mode 600 level admin\n\nbackend kube-apiservers\n    balance roundrobin\n"
              "    server h1 10.0.0.1:6443 check inter 2s\n    server h2 10.0.0.2:6443 check\n\n"
              "backend other\n    server x 10.9.9.9:1\n")
    assert config_backends(config, "kube-apiservers") == {"h1": "10.0.0.1:6443", "h2": "10.0.0.2:6443"}
    assert config_backends("", "kube-apiservers") == {}
