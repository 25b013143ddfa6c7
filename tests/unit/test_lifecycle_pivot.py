"""The pivot planner: step orders at both levels, and the refusals that keep state from being lost or overwritten."""

from __future__ import annotations

import pytest

from kubectl_state.core.errors import ExitStatus, InvalidInputError, UnsafeOperationError
from kubectl_state.core.lifecycle.pivot import Bootstrap, PivotAction, PivotLevel, PivotPlan, plan_pivot
from kubectl_state.core.lifecycle.steps import Action
from kubectl_state.core.lifecycle.topology import ApiServer, EtcdHost, Observed, ObservedMember, Topology

TARGET = Topology(
    etcd=tuple(EtcdHost(n, f"http://{n}:2380", f"http://{n}:2379") for n in ("h2", "h3", "h4")),
    control_plane=(ApiServer("h2", "h2:6443"), ApiServer("h3", "h3:6443")),
    endpoint="h5",
)


def member(member_id: int, name: str, *, healthy: bool = True, learner: bool = False) -> ObservedMember:
    return ObservedMember(id=member_id, name=name, peer_urls=(f"http://{name}:2380",), is_learner=learner,
                          started=True, healthy=healthy)


def bootstrap(*, running: bool = True, healthy: bool = True, data: bool | None = None) -> Bootstrap:
    return Bootstrap(
        etcd=EtcdHost("h1", "http://h1:2380", "http://h1:2379"),
        apiserver=ApiServer("h1", "h1:6443"),
        members=(member(1, "h1", healthy=healthy),) if running else (),
        has_data=running if data is None else data,
    )


#: The endpoint runs and serves the bootstrap's replica; nothing of the target exists.
SERVING = Observed(backends={"h1": "h1:6443"}, endpoint_running=True)
TARGET_UP = Observed(members=(member(2, "h2"), member(3, "h3"), member(4, "h4")),
                     backends={"h2": "h2:6443", "h3": "h3:6443"}, endpoint_running=True)


def actions(plan: PivotPlan) -> list[tuple[str, str]]:
    return [(s.action, s.host) for s in plan.steps]


def test_etcd_level_stops_writes_before_the_snapshot_and_restores_every_member_from_it() -> None:
    plan = plan_pivot(TARGET, SERVING, bootstrap=bootstrap(), level="etcd")
    assert plan.level is PivotLevel.ETCD
    assert actions(plan) == [
        ("count_objects", "h5"),
        ("remove_from_endpoint", "h1"), ("stop_writes", "h1"), ("snapshot", "h1"),
        ("restore_member", "h2"), ("restore_member", "h3"), ("restore_member", "h4"),
        ("start_restored", "h2"), ("start_restored", "h3"), ("start_restored", "h4"),
        ("start_apiserver", "h2"), ("add_to_endpoint", "h2"), ("start_apiserver", "h3"), ("add_to_endpoint", "h3"),
        ("verify", "h5"), ("delete_bootstrap", "h1"),
    ]
    # No member starts before all are restored: a restored member waits for its new cluster's quorum.
    assert max(plan.index(PivotAction.RESTORE_MEMBER, h) for h in ("h2", "h3", "h4")) \
        < min(plan.index(PivotAction.START_RESTORED, h) for h in ("h2", "h3", "h4"))
    assert plan.lines()[2] == "3. stop bootstrap API server h1, its files kept (writes stop until the target's " \
                              "first replica joins the endpoint)"


def test_a_fresh_start_creates_the_endpoint_and_the_bootstrap_first() -> None:
    plan = plan_pivot(TARGET, Observed(), bootstrap=bootstrap(running=False), level=PivotLevel.ETCD)
    assert actions(plan)[:4] == [("start_endpoint", "h5"), ("form_cluster", "h1"), ("start_apiserver", "h1"),
                                 ("add_to_endpoint", "h1")]
    assert plan.lines()[1] == "2. bootstrap: form the etcd cluster with h1"


def test_api_level_builds_the_target_as_create_would_and_switches_the_endpoint_after_the_copy() -> None:
    plan = plan_pivot(TARGET, SERVING, bootstrap=bootstrap(), level="api", move=True)
    assert actions(plan) == [
        ("form_cluster", "h2"),
        ("add_learner", "h3"), ("start_member", "h3"), ("promote", "h3"),
        ("add_learner", "h4"), ("start_member", "h4"), ("promote", "h4"),
        ("start_apiserver", "h2"), ("start_apiserver", "h3"),
        ("count_objects", "h5"), ("copy_objects", "h1"),
        ("add_to_endpoint", "h2"), ("add_to_endpoint", "h3"), ("remove_from_endpoint", "h1"),
        ("verify", "h5"), ("delete_bootstrap", "h1"),
    ]
    assert "then deleted from the bootstrap" in plan.steps[plan.index(PivotAction.COPY_OBJECTS, "h1")].text
    # Clients keep one address: the bootstrap leaves the endpoint only once the target's replicas are in it.
    assert plan.index(Action.REMOVE_FROM_ENDPOINT, "h1") > max(plan.index(Action.ADD_TO_ENDPOINT, h)
                                                               for h in ("h2", "h3"))


def test_api_level_on_a_partly_built_target_plans_only_what_is_missing() -> None:
    partial = Observed(members=(member(2, "h2"), member(3, "h3")), backends={"h1": "h1:6443"},
                       endpoint_running=True)
    plan = plan_pivot(TARGET, partial, bootstrap=bootstrap(), level="api")
    assert actions(plan)[:3] == [("add_learner", "h4"), ("start_member", "h4"), ("promote", "h4")]
    assert "form_cluster" not in [a for a, _ in actions(plan)]


def test_api_level_target_join_is_quorum_checked() -> None:
    # Two of three target members down: adding the third as a learner could not be committed.
    degraded = Observed(members=(member(2, "h2"), member(3, "h3", healthy=False), member(5, "h5x", healthy=False)),
                        endpoint_running=True)
    with pytest.raises(UnsafeOperationError, match="no quorum"):
        plan_pivot(TARGET, degraded, bootstrap=bootstrap(), level="api")


def test_etcd_level_refuses_a_target_that_holds_a_cluster() -> None:
    with pytest.raises(UnsafeOperationError, match="would overwrite it") as raised:
        plan_pivot(TARGET, TARGET_UP, bootstrap=bootstrap(), level="etcd")
    assert raised.value.exit_status == ExitStatus.UNSAFE
    with pytest.raises(UnsafeOperationError, match="data dirs on h3"):
        plan_pivot(TARGET, SERVING, bootstrap=bootstrap(), level="etcd", target_data=["h3"])


def test_unknown_level_and_a_bootstrap_among_the_target_hosts_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="unknown pivot_level 'both'"):
        plan_pivot(TARGET, SERVING, bootstrap=bootstrap(), level="both")
    inside = Topology(etcd=TARGET.etcd, control_plane=(*TARGET.control_plane, ApiServer("h1", "h1:6443")),
                      endpoint="h5")
    with pytest.raises(InvalidInputError, match="may not also be a target host"):
        plan_pivot(inside, SERVING, bootstrap=bootstrap())
    with pytest.raises(InvalidInputError, match="may not also be a target host or the API endpoint"):
        plan_pivot(Topology(etcd=TARGET.etcd, control_plane=TARGET.control_plane, endpoint="h1"), SERVING,
                   bootstrap=bootstrap())


def test_a_bootstrap_without_quorum_is_refused() -> None:
    with pytest.raises(UnsafeOperationError, match="bootstrap's etcd on h1 answers but has no quorum"):
        plan_pivot(TARGET, SERVING, bootstrap=bootstrap(healthy=False), level="api")


def test_once_pivoted_the_plan_is_empty_and_a_stopped_bootstrap_is_not_taken_for_gone() -> None:
    done = plan_pivot(TARGET, TARGET_UP, bootstrap=bootstrap(running=False), level="etcd")
    assert done.empty and done.lines() == ["pivot: nothing to do", "the target runs and the bootstrap on h1 is gone"]
    # The bootstrap's etcd is down but its data is there: the state is not lost, so not "done".
    with pytest.raises(UnsafeOperationError, match="would overwrite it"):
        plan_pivot(TARGET, TARGET_UP, bootstrap=bootstrap(running=False, data=True), level="etcd")


def test_the_plan_as_a_dict() -> None:
    doc = plan_pivot(TARGET, SERVING, bootstrap=bootstrap(), level="api").to_dict()
    assert doc["operation"] == "pivot" and doc["level"] == "api"
    steps = doc["steps"]
    assert isinstance(steps, list)
    assert steps[-1] == {"action": "delete_bootstrap", "host": "h1",
                                "text": "delete the bootstrap on h1: stop its API server and etcd, wipe their data"}
