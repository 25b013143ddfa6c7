"""The pivot planner, through planner.plan: step orders at both levels, and the refusals that keep state
from being lost or overwritten."""

from __future__ import annotations

import pytest

from kubectl_state.core.errors import ExitStatus, InvalidInputError, UnsafeOperationError
from kubectl_state.core.lifecycle.pivot import Bootstrap, bootstrap_host
from kubectl_state.core.lifecycle.planner import OPERATIONS, PLANNERS, plan
from kubectl_state.core.lifecycle.steps import Action, Plan
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
    found = bootstrap_host({"name": "h1", "peer_url": "http://h1:2380", "client_url": "http://h1:2379",
                            "address": "h1:6443", "has_data": running if data is None else data})
    return found.found([member(1, "h1", healthy=healthy)] if running else [])


#: The endpoint runs and serves the bootstrap's replica; nothing of the target exists.
SERVING = Observed(backends={"h1": "h1:6443"}, endpoint_running=True)
TARGET_UP = Observed(members=(member(2, "h2"), member(3, "h3"), member(4, "h4")),
                     backends={"h2": "h2:6443", "h3": "h3:6443"}, endpoint_running=True)


def pivot(topology: Topology = TARGET, observed: Observed = SERVING, **options: object) -> Plan:
    options.setdefault("bootstrap", bootstrap())
    return plan("pivot", topology, observed, **options)


def actions(p: Plan) -> list[tuple[str, str]]:
    return [(s.action.value, s.host) for s in p.steps]


def index(p: Plan, action: Action, host: str) -> int:
    return next(i for i, s in enumerate(p.steps) if s.action is action and s.host == host)


def test_pivot_is_a_planner_operation() -> None:
    assert "pivot" in OPERATIONS and "pivot" in PLANNERS


def test_etcd_level_stops_writes_before_the_snapshot_and_restores_the_target_as_a_restore_would() -> None:
    p = pivot(level="etcd", pivot_dir="/srv/pivot")
    assert p.operation == "pivot"
    assert actions(p) == [
        ("export", "h5"),
        ("pause_apiserver", "h1"), ("snapshot", "h1"),
        ("stage_snapshot", "h2"), ("stage_snapshot", "h3"), ("stage_snapshot", "h4"),
        ("restore_member", "h2"), ("restore_member", "h3"), ("restore_member", "h4"),
        ("start_restored", "h2, h3, h4"),
        ("start_apiserver", "h2"), ("add_to_endpoint", "h2"), ("start_apiserver", "h3"), ("add_to_endpoint", "h3"),
        ("verify", "h5"), ("stop_apiserver", "h1"), ("stop_and_wipe", "h1"),
    ]
    # The bootstrap's replica is out of the endpoint and stopped before the snapshot is taken.
    assert index(p, Action.PAUSE_APISERVER, "h1") < index(p, Action.SNAPSHOT, "h1")
    assert p.lines()[1] == ("2. remove API server h1 from the API endpoint and stop it (its files kept) (the "
                            "bootstrap: writes stop until the target's first replica joins the endpoint)")
    assert p.lines()[2] == "3. take an etcd snapshot from h1 (the bootstrap's, into /srv/pivot)"
    assert p.lines()[-1] == "pivot_level etcd"


def test_a_fresh_start_creates_the_endpoint_and_the_bootstrap_first() -> None:
    p = pivot(observed=Observed(), bootstrap=bootstrap(running=False), level="etcd")
    assert actions(p)[:4] == [("start_endpoint", "h5"), ("form_cluster", "h1"), ("start_apiserver", "h1"),
                              ("add_to_endpoint", "h1")]
    assert p.lines()[1] == "2. form the etcd cluster with h1 (the bootstrap's own, peer http://h1:2380)"


def test_bootstrap_only_plans_the_endpoint_and_the_bootstrap_and_nothing_once_they_serve() -> None:
    fresh = pivot(observed=Observed(), bootstrap=bootstrap(running=False), bootstrap_only=True)
    assert actions(fresh) == [("start_endpoint", "h5"), ("form_cluster", "h1"), ("start_apiserver", "h1"),
                              ("add_to_endpoint", "h1")]
    assert pivot(bootstrap_only=True).empty


def test_a_running_bootstrap_out_of_the_endpoint_is_started_and_added_until_the_target_runs() -> None:
    p = pivot(observed=Observed(endpoint_running=True), level="api")
    assert actions(p)[:2] == [("start_apiserver", "h1"), ("add_to_endpoint", "h1")]
    half = Observed(members=(member(2, "h2"),), backends={}, endpoint_running=True)
    assert ("add_to_endpoint", "h1") not in actions(pivot(observed=half, level="api"))


def test_api_level_builds_the_target_as_create_would_and_switches_the_endpoint_after_the_copy() -> None:
    p = pivot(level="api", move=True)
    assert actions(p) == [
        ("form_cluster", "h2"),
        ("add_learner", "h3"), ("start_member", "h3"), ("promote", "h3"),
        ("add_learner", "h4"), ("start_member", "h4"), ("promote", "h4"),
        ("start_apiserver", "h2"), ("start_apiserver", "h3"),
        ("export", "h5"), ("copy_objects", "h1"),
        ("add_to_endpoint", "h2"), ("add_to_endpoint", "h3"), ("remove_from_endpoint", "h1"),
        ("verify", "h5"), ("stop_apiserver", "h1"), ("stop_and_wipe", "h1"),
    ]
    assert p.steps[index(p, Action.COPY_OBJECTS, "h1")].text == \
        "copy the chosen objects from h1 into the target (state_migrate) (then deleted from the bootstrap)"
    # Clients keep one address: the bootstrap leaves the endpoint only once the target's replicas are in it.
    assert index(p, Action.REMOVE_FROM_ENDPOINT, "h1") > max(index(p, Action.ADD_TO_ENDPOINT, h) for h in ("h2", "h3"))
    assert p.hosts(Action.FORM_CLUSTER) == ["h2"]


def test_api_level_on_a_partly_built_target_plans_only_what_is_missing() -> None:
    partial = Observed(members=(member(2, "h2"), member(3, "h3")), backends={"h1": "h1:6443"},
                       endpoint_running=True)
    p = pivot(observed=partial, level="api")
    assert actions(p)[:3] == [("add_learner", "h4"), ("start_member", "h4"), ("promote", "h4")]
    assert p.hosts(Action.FORM_CLUSTER) == []


def test_api_level_target_join_is_quorum_checked() -> None:
    # Two of three target members down: adding the third as a learner could not be committed.
    degraded = Observed(members=(member(2, "h2"), member(3, "h3", healthy=False), member(5, "h5x", healthy=False)),
                        endpoint_running=True)
    with pytest.raises(UnsafeOperationError, match="no quorum"):
        pivot(observed=degraded, level="api")


def test_etcd_level_refuses_a_target_that_holds_a_cluster() -> None:
    with pytest.raises(UnsafeOperationError, match="would overwrite it") as raised:
        pivot(observed=TARGET_UP, level="etcd")
    assert raised.value.exit_status == ExitStatus.UNSAFE
    with pytest.raises(UnsafeOperationError, match="data dirs on h3"):
        pivot(level="etcd", target_data=["h3"])


def test_unknown_level_and_a_bootstrap_among_the_target_hosts_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="unknown pivot_level 'both'"):
        pivot(level="both")
    inside = Topology(etcd=TARGET.etcd, control_plane=(*TARGET.control_plane, ApiServer("h1", "h1:6443")),
                      endpoint="h5")
    with pytest.raises(InvalidInputError, match="may not also be a target host"):
        pivot(inside)
    with pytest.raises(InvalidInputError, match="may not also be a target host or the API endpoint"):
        pivot(Topology(etcd=TARGET.etcd, control_plane=TARGET.control_plane, endpoint="h1"))


def test_a_bootstrap_without_quorum_is_refused() -> None:
    with pytest.raises(UnsafeOperationError, match="bootstrap's etcd on h1 answers but has no quorum"):
        pivot(bootstrap=bootstrap(healthy=False), level="api")


def test_once_pivoted_the_plan_is_empty_and_a_stopped_bootstrap_is_not_taken_for_gone() -> None:
    done = pivot(observed=TARGET_UP, bootstrap=bootstrap(running=False), level="etcd")
    assert done.empty and done.lines() == ["pivot: nothing to do", "the target runs and the bootstrap on h1 is gone"]
    # The bootstrap's etcd is down but its data is there: the state is not lost, so not "done".
    with pytest.raises(UnsafeOperationError, match="would overwrite it"):
        pivot(observed=TARGET_UP, bootstrap=bootstrap(running=False, data=True), level="etcd")


def test_bad_options_and_a_bad_bootstrap_entry_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="the pivot plan takes no option snapshot"):
        pivot(snapshot="x.db")
    with pytest.raises(InvalidInputError, match="needs a name and an address"):
        bootstrap_host({"name": "h1", "peer_url": "http://h1:2380", "client_url": "http://h1:2379"})
    with pytest.raises(InvalidInputError, match="needs a client_url"):
        bootstrap_host({"name": "h1", "peer_url": "http://h1:2380", "address": "h1:6443"})
    with pytest.raises(InvalidInputError, match="has_data is true or false"):
        bootstrap_host({"name": "h1", "peer_url": "http://h1:2380", "client_url": "http://h1:2379",
                        "address": "h1:6443", "has_data": "False"})


def test_the_plan_as_a_dict() -> None:
    doc = pivot(level="api").to_dict()
    assert doc["operation"] == "pivot" and doc["notes"] == ["the bootstrap's etcd runs on h1", "pivot_level api"]
    steps = doc["steps"]
    assert isinstance(steps, list)
    assert steps[-1] == {"action": "stop_and_wipe", "host": "h1", "detail": "the bootstrap",
                         "text": "stop etcd on h1 and wipe its data (the bootstrap)"}
