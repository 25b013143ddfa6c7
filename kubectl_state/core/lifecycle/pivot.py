"""The pivot's plan: a bootstrap control plane hands its state to the control plane it created.

The bootstrap (one host: a one-member etcd cluster and an API server) serves through the fixed
API endpoint while the target is built; at the switch the endpoint's backend changes from the
bootstrap's replica to the target's, so clients keep one address; then the target is verified
and only then is the bootstrap deleted. Two levels:
  etcd  the bootstrap's replica leaves the endpoint and stops (no write is acknowledged after the
        snapshot), its etcd is snapshotted, and the target is restored from that one snapshot
        exactly as plan_restore plans a restore (the playbook runs the restore playbook). Refused
        when the target holds etcd data already: the restore would overwrite it.
  api   the target is created empty exactly as plan_create plans it (learners promoted one at a
        time, quorum-checked there), its replicas serve outside the endpoint, the chosen objects
        are copied with state_migrate, then the target's replicas join and the bootstrap's leaves.
A bootstrap whose etcd answers without quorum is refused at both levels: its state cannot be read
as one consistent whole. With the target running and the bootstrap gone the plan is empty.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from kubectl_state.core.errors import InvalidInputError, UnsafeOperationError
from kubectl_state.core.etcd import quorum
from kubectl_state.core.lifecycle.recovery import plan_restore
from kubectl_state.core.lifecycle.steps import Action, Plan, Step
from kubectl_state.core.lifecycle.topology import (
    ApiServer,
    EtcdHost,
    Observed,
    ObservedMember,
    Topology,
    api_servers,
    etcd_hosts,
)

#: The detail that tells the bootstrap's steps from the target's on the same kinds of step.
BOOTSTRAP = "the bootstrap"


class PivotLevel(enum.Enum):
    ETCD = "etcd"
    API = "api"


def pivot_level(value: str | PivotLevel) -> PivotLevel:
    if isinstance(value, PivotLevel):
        return value
    try:
        return PivotLevel(value)
    except ValueError:
        raise InvalidInputError(
            f"unknown pivot_level {value!r}: it is etcd (a snapshot of the bootstrap's etcd restored into the "
            "target's members) or api (the chosen resources copied with state_migrate)"
        ) from None


@dataclass(frozen=True)
class Bootstrap:
    """The bootstrap host as the inventory names it and as it was found."""

    etcd: EtcdHost
    apiserver: ApiServer
    #: Its etcd members as listed through its client URL; () when none answers.
    members: tuple[ObservedMember, ...] = ()
    #: Whether its etcd data dir exists (a stopped bootstrap still holds the state).
    has_data: bool = False

    @property
    def name(self) -> str:
        return self.etcd.name

    @property
    def running(self) -> bool:
        return bool(self.members)

    def found(self, members: Sequence[ObservedMember]) -> Bootstrap:
        """The same host with the members its etcd lists now."""
        return dataclasses.replace(self, members=tuple(members))


def bootstrap_host(entry: object) -> Bootstrap:
    """The bootstrap from a dict with name, peer_url, client_url, address and has_data; not observed yet."""
    if not isinstance(entry, Mapping):
        raise InvalidInputError(f"the pivot's bootstrap is a dict with name, peer_url, client_url, address and "
                                f"has_data, not {entry!r}")
    (etcd,) = etcd_hosts([entry], "bootstrap")
    (apiserver,) = api_servers([entry], "bootstrap")
    if not etcd.client_url:
        raise InvalidInputError(f"the bootstrap {etcd.name} needs a client_url: its etcd is read through it")
    has_data = entry.get("has_data", False)
    if not isinstance(has_data, bool):
        raise InvalidInputError(f"the bootstrap's has_data is true or false, not {has_data!r}")
    return Bootstrap(etcd=etcd, apiserver=apiserver, has_data=has_data)


def _check_hosts(topology: Topology, bootstrap: Bootstrap) -> None:
    if topology.etcd_remove or topology.control_plane_remove or topology.endpoint_moves:
        raise InvalidInputError("etcd_remove, control_plane_remove and api_endpoint_remove are for scale and "
                                "migrate, not for the pivot")
    target = {h.name for h in topology.etcd} | {s.name for s in topology.control_plane} | {topology.endpoint}
    if bootstrap.name in target or bootstrap.apiserver.name in target:
        raise InvalidInputError(
            f"the bootstrap host {bootstrap.name} is wiped at the end of the pivot, so it may not also be a target "
            "host or the API endpoint"
        )


def _require_bootstrap_quorum(bootstrap: Bootstrap) -> None:
    summary = quorum.summarize([m.view() for m in bootstrap.members])
    if not summary.has_quorum:
        raise UnsafeOperationError(
            f"refusing to pivot: the bootstrap's etcd on {bootstrap.name} answers but has no quorum "
            f"({summary.healthy_voters} of {summary.voters} voting members healthy); repair it first"
        )


def _refuse_overwrite(observed: Observed, target_data: Sequence[str]) -> None:
    if observed.cluster_exists or target_data:
        found = ("its members answer" if observed.cluster_exists
                 else f"data dirs on {', '.join(target_data)}")
        raise UnsafeOperationError(
            f"refusing to pivot at the etcd level: the target already holds an etcd cluster ({found}), and "
            "restoring the bootstrap's snapshot there would overwrite it; delete it first "
            "(kubectl_state.control_plane.delete) if it is not wanted, or pivot at the api level"
        )


def _bootstrap_up(topology: Topology, observed: Observed, bootstrap: Bootstrap) -> list[Step]:
    """The endpoint and the bootstrap, serving through it until the target takes over."""
    steps = []
    if not observed.endpoint_running:
        steps.append(Step(Action.START_ENDPOINT, topology.endpoint))
    if not bootstrap.running:
        steps.append(Step(Action.FORM_CLUSTER, bootstrap.name, f"{BOOTSTRAP}'s own, peer {bootstrap.etcd.peer_url}"))
    server = bootstrap.apiserver
    # Once the target's etcd runs, the endpoint is (or is about to be) the target's: a re-run after
    # a later failure must not put the bootstrap's replica back into it.
    joins = not observed.cluster_exists and observed.backends.get(server.name) != server.address
    if joins or not bootstrap.running:
        steps.append(Step(Action.START_APISERVER, server.name, f"{BOOTSTRAP}, {server.address}"))
    if joins:
        steps.append(Step(Action.ADD_TO_ENDPOINT, server.name, BOOTSTRAP))
    return steps


def _etcd_level(topology: Topology, observed: Observed, bootstrap: Bootstrap, files: str) -> list[Step]:
    steps = [
        Step(Action.EXPORT, topology.endpoint, _counted(files)),
        # Out of the endpoint and stopped before the snapshot: no write is acknowledged and then lost.
        Step(Action.PAUSE_APISERVER, bootstrap.apiserver.name,
             f"{BOOTSTRAP}: writes stop until the target's first replica joins the endpoint"),
        Step(Action.SNAPSHOT, bootstrap.name, f"{BOOTSTRAP}'s, into {files}" if files else f"{BOOTSTRAP}'s"),
    ]
    # Then a restore of that snapshot into the target, as the restore playbook (which the pivot
    # runs) plans it. The endpoint runs by then (the bootstrap served through it), and the target's
    # members have nothing to stop: the pivot is refused above when the target holds any etcd.
    restored = plan_restore(topology, dataclasses.replace(observed, endpoint_running=True),
                            snapshot=f"{BOOTSTRAP}'s snapshot")
    steps += [s for s in restored.steps if s.action is not Action.STOP_MEMBER]
    return steps


def _api_level(topology: Topology, observed: Observed, bootstrap: Bootstrap, move: bool, files: str) -> list[Step]:
    # planner.py imports this module to list plan_pivot in PLANNERS beside the other planners, so
    # plan_create is imported when an api-level pivot is planned: at the top it would be a cycle.
    from kubectl_state.core.lifecycle.planner import plan_create  # noqa: PLC0415 (import cycle)

    # The target as create plans it (its membership changes quorum-checked there); its replicas
    # join the endpoint only after the copy, so clients never see a half-filled cluster.
    created = plan_create(topology, observed)
    steps = [s for s in created.steps if s.action not in (Action.START_ENDPOINT, Action.ADD_TO_ENDPOINT)]
    steps = [dataclasses.replace(s, detail=f"{s.detail}, outside the endpoint until the copy is done")
             if s.action is Action.START_APISERVER else s for s in steps]
    steps += [Step(Action.EXPORT, topology.endpoint, _counted(files)),
              Step(Action.COPY_OBJECTS, bootstrap.name, "then deleted from the bootstrap" if move else "")]
    steps += [Step(Action.ADD_TO_ENDPOINT, s.name) for s in topology.control_plane
              if observed.backends.get(s.name) != s.address]
    steps.append(Step(Action.REMOVE_FROM_ENDPOINT, bootstrap.apiserver.name, BOOTSTRAP))
    return steps


def _counted(files: str) -> str:
    where = f", into {files}" if files else ""
    return f"what the bootstrap serves, counted for the verification{where}"


def plan_pivot(
    topology: Topology,
    observed: Observed,
    *,
    bootstrap: Bootstrap,
    level: str | PivotLevel = PivotLevel.ETCD,
    target_data: Sequence[str] = (),
    move: bool = False,
    bootstrap_only: bool = False,
    pivot_dir: str = "",
) -> Plan:
    """The checked plan of a pivot from `bootstrap` into the target `topology`.

    `observed` is the target as it runs (its etcd members, the endpoint's backends);
    `target_data` the target hosts whose etcd data dir exists; `move` deletes the copied objects
    from the bootstrap (api level); `bootstrap_only` plans the endpoint and the bootstrap alone
    (to load the bootstrap before the pivot); `pivot_dir` is where the snapshot and exports go.
    Raises InvalidInputError for a bad level or inventory and UnsafeOperationError when the pivot
    would lose or overwrite state.
    """
    chosen = pivot_level(level)
    _check_hosts(topology, bootstrap)
    if observed.cluster_exists and not bootstrap.running and not bootstrap.has_data:
        return Plan("pivot", (), (f"the target runs and the bootstrap on {bootstrap.name} is gone",))
    # Refused with pivot_bootstrap_only too: loading a bootstrap that cannot be pivoted is wasted.
    if chosen is PivotLevel.ETCD:
        _refuse_overwrite(observed, target_data)
    if bootstrap.running:
        _require_bootstrap_quorum(bootstrap)
    steps = _bootstrap_up(topology, observed, bootstrap)
    notes = [f"the bootstrap's etcd runs on {bootstrap.name}"] if bootstrap.running else []
    if bootstrap_only:
        return Plan("pivot", tuple(steps), (*notes, "pivot_bootstrap_only: the pivot itself is left for later"))
    if chosen is PivotLevel.ETCD:
        steps += _etcd_level(topology, observed, bootstrap, pivot_dir)
    else:
        steps += _api_level(topology, observed, bootstrap, move, pivot_dir)
    voters = len(topology.etcd)
    steps += [Step(Action.VERIFY, topology.endpoint, f"{voters} voter{'s' if voters != 1 else ''}"),
              Step(Action.STOP_APISERVER, bootstrap.apiserver.name, BOOTSTRAP),
              Step(Action.STOP_AND_WIPE, bootstrap.name, BOOTSTRAP)]
    return Plan("pivot", tuple(steps), (*notes, f"pivot_level {chosen.value}"))
