"""The lifecycle planner: step orders per operation, and refusals before anything runs."""

from __future__ import annotations

import pytest

from kubectl_state.core.errors import ExitStatus, InvalidInputError, UnsafeOperationError
from kubectl_state.core.lifecycle.planner import plan
from kubectl_state.core.lifecycle.topology import ApiServer, EtcdHost, Observed, ObservedMember, Topology


def etcd(*names: str) -> tuple[EtcdHost, ...]:
    return tuple(EtcdHost(n, f"http://{n}:2380", f"http://{n}:2379") for n in names)


def api(*names: str) -> tuple[ApiServer, ...]:
    return tuple(ApiServer(n, f"{n}:6443") for n in names)


def topo(members: str, replicas: str = "h1 h2", remove: str = "", remove_api: str = "") -> Topology:
    return Topology(etcd=etcd(*members.split()), control_plane=api(*replicas.split()), endpoint="lb",
                    etcd_remove=etcd(*remove.split()), control_plane_remove=api(*remove_api.split()))


def running(spec: str, replicas: str = "h1 h2", version: str = "3.5.21", leader: str = "h1") -> Observed:
    """'h1 h2 h3:down h4:learner h5:new' -> members (a 'new' learner has not started)."""
    members = []
    for i, item in enumerate(spec.split(), start=1):
        name, _, flag = item.partition(":")
        members.append(ObservedMember(
            id=0x100 + i, name="" if flag == "new" else name, peer_urls=(f"http://{name}:2380",),
            is_learner=flag in ("learner", "new"), started=flag != "new", healthy=flag in ("", "learner"),
            is_leader=name == leader, version=version if flag != "down" else None,
            reason="connection refused" if flag == "down" else ""))
    return Observed(members=tuple(members), backends={r: f"{r}:6443" for r in replicas.split()},
                    endpoint_running=True)


def steps(p: object) -> list[tuple[str, str]]:
    return [(s.action.value, s.host) for s in p.steps]  # type: ignore[attr-defined]


def test_create_from_nothing_forms_the_cluster_then_joins_one_member_at_a_time() -> None:
    p = plan("create", topo("h1 h2 h3"), Observed())
    assert steps(p) == [
        ("start_endpoint", "lb"), ("form_cluster", "h1"),
        ("add_learner", "h2"), ("start_member", "h2"), ("promote", "h2"),
        ("add_learner", "h3"), ("start_member", "h3"), ("promote", "h3"),
        ("start_apiserver", "h1"), ("add_to_endpoint", "h1"), ("start_apiserver", "h2"), ("add_to_endpoint", "h2"),
    ]
    assert p.lines()[1] == "2. form the etcd cluster with h1 (peer http://h1:2380)"


def test_create_on_a_running_control_plane_plans_nothing() -> None:
    p = plan("create", topo("h1 h2 h3"), running("h1 h2 h3"))
    assert p.empty and p.lines() == ["create: nothing to do"]


def test_create_finishes_a_learner_an_earlier_run_added_but_never_started() -> None:
    p = plan("create", topo("h1 h2 h3"), running("h1 h2 h3:new"))
    assert steps(p) == [("start_member", "h3"), ("promote", "h3")]


def test_scale_up_adds_replicas_and_learners_one_at_a_time() -> None:
    p = plan("scale", topo("h1 h2 h3 h4 h5", "h1 h2 h3"), running("h1 h2 h3"), outdated_apiservers=["h1", "h2"])
    assert steps(p) == [
        ("add_learner", "h4"), ("start_member", "h4"), ("promote", "h4"),
        ("add_learner", "h5"), ("start_member", "h5"), ("promote", "h5"),
        ("start_apiserver", "h3"), ("add_to_endpoint", "h3"),
        ("replace_apiserver", "h1"), ("replace_apiserver", "h2"),
    ]


def test_scale_down_takes_replicas_out_of_the_endpoint_before_members_out_of_etcd() -> None:
    p = plan("scale", topo("h1 h2 h3", "h1 h2", remove="h4 h5", remove_api="h3"),
             running("h1 h2 h3 h4 h5", replicas="h1 h2 h3"))
    assert steps(p) == [
        ("remove_from_endpoint", "h3"), ("stop_apiserver", "h3"),
        ("remove_member", "h4"), ("stop_and_wipe", "h4"), ("remove_member", "h5"), ("stop_and_wipe", "h5"),
    ]
    # Run again once done: nothing left to do.
    assert plan("scale", topo("h1 h2 h3", "h1 h2", remove="h4 h5", remove_api="h3"), running("h1 h2 h3")).empty


def test_scale_refuses_to_go_below_quorum_and_says_why() -> None:
    with pytest.raises(UnsafeOperationError) as refused:
        plan("scale", topo("h1 h3", remove="h2"), running("h1 h2 h3:down"))
    assert "remove etcd member h2" in refused.value.message
    assert "only 1 healthy, below their quorum of 2" in refused.value.message
    assert refused.value.exit_status == ExitStatus.UNSAFE


def test_scale_refuses_to_remove_the_last_member() -> None:
    with pytest.raises(UnsafeOperationError, match="last voting member"):
        plan("scale", topo("", replicas="h1", remove="h1"), running("h1", replicas="h1"))


def test_scale_refuses_a_degraded_cluster_even_when_quorum_would_hold() -> None:
    with pytest.raises(UnsafeOperationError, match=r"h5 \(105\) are not healthy; repair"):
        plan("scale", topo("h1 h2 h3 h5", remove="h4"), running("h1 h2 h3 h4 h5:down"))


def test_scale_refuses_members_the_inventory_does_not_mention() -> None:
    with pytest.raises(UnsafeOperationError, match=r"h9 \(104\) are in the cluster but not in the inventory"):
        plan("scale", topo("h1 h2 h3"), running("h1 h2 h3 h9"))


def test_scale_needs_a_cluster() -> None:
    with pytest.raises(UnsafeOperationError, match="no etcd member in the inventory answers"):
        plan("scale", topo("h1 h2 h3"), Observed())


def test_a_host_cannot_be_kept_and_removed() -> None:
    with pytest.raises(InvalidInputError, match="listed twice"):
        topo("h1 h2 h3", remove="h3")


def test_a_member_whose_peer_url_differs_from_the_inventory_is_an_error() -> None:
    observed = running("h1 h2 h3")
    moved = Observed(members=(observed.members[0], observed.members[1],
                              ObservedMember(id=9, name="h3", peer_urls=("http://elsewhere:2380",), is_learner=False,
                                             started=True, healthy=True)), endpoint_running=True)
    with pytest.raises(InvalidInputError, match="peer URL cannot change in place"):
        plan("scale", topo("h1 h2 h3"), moved)


def test_repair_replaces_exactly_the_failed_member() -> None:
    p = plan("repair", topo("h1 h2 h3"), running("h1 h2 h3:down"))
    assert steps(p) == [("remove_member", "h3"), ("stop_and_wipe", "h3"),
                        ("add_learner", "h3"), ("start_member", "h3"), ("promote", "h3")]
    assert "failed: connection refused" in p.steps[0].text


def test_repair_replaces_two_failed_members_of_five_one_after_the_other() -> None:
    p = plan("repair", topo("h1 h2 h3 h4 h5"), running("h1 h2:down h3 h4:down h5"))
    assert [h for a, h in steps(p) if a == "remove_member"] == ["h2", "h4"]
    assert steps(p).index(("promote", "h2")) < steps(p).index(("remove_member", "h4"))


def test_repair_of_a_healthy_cluster_plans_nothing() -> None:
    assert plan("repair", topo("h1 h2 h3"), running("h1 h2 h3")).empty


def test_repair_refuses_when_the_rest_have_no_quorum() -> None:
    with pytest.raises(UnsafeOperationError, match=r"no quorum .*restore the cluster from a snapshot"):
        plan("repair", topo("h1 h2 h3"), running("h1 h2:down h3:down"))


def test_upgrade_snapshots_from_the_leader_then_restarts_one_member_at_a_time() -> None:
    p = plan("upgrade", topo("h1 h2 h3"), running("h1 h2 h3", version="3.4.23", leader="h2"),
             etcd_version="3.5.21", outdated_apiservers=["h1", "h2"])
    assert steps(p) == [("snapshot", "h2"), ("upgrade_member", "h1"), ("upgrade_member", "h2"),
                        ("upgrade_member", "h3"), ("replace_apiserver", "h1"), ("replace_apiserver", "h2")]
    assert "3.4.23 -> 3.5.21" in p.steps[1].text


def test_upgrade_skips_members_already_at_the_version() -> None:
    assert plan("upgrade", topo("h1 h2 h3"), running("h1 h2 h3"), etcd_version="3.5.21").empty


def test_upgrade_refuses_when_a_member_is_down() -> None:
    with pytest.raises(UnsafeOperationError, match=r"h3 \(103\) are not healthy"):
        plan("upgrade", topo("h1 h2 h3"), running("h1 h2 h3:down"), etcd_version="3.5.21")


def test_upgrade_refuses_an_unfinished_scale() -> None:
    with pytest.raises(UnsafeOperationError, match="does not match the inventory"):
        plan("upgrade", topo("h1 h2 h3 h4"), running("h1 h2 h3"), etcd_version="3.5.21")


def test_delete_takes_replicas_out_first_and_the_endpoint_last() -> None:
    p = plan("delete", topo("h1 h2 h3"), running("h1 h2 h3"))
    assert steps(p) == [("remove_from_endpoint", "h1"), ("stop_apiserver", "h1"),
                        ("remove_from_endpoint", "h2"), ("stop_apiserver", "h2"),
                        ("stop_and_wipe", "h1"), ("stop_and_wipe", "h2"), ("stop_and_wipe", "h3"),
                        ("stop_endpoint", "lb")]


def test_unknown_operation() -> None:
    with pytest.raises(InvalidInputError, match="unknown lifecycle operation"):
        plan("teleport", topo("h1"), Observed())
