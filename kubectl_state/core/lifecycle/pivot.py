"""The pivot's plan: a bootstrap control plane hands its state to the control plane it created.

The bootstrap (one host: a one-member etcd cluster and an API server) serves through the fixed
API endpoint while the target is built; at the switch the endpoint's backend changes from the
bootstrap's replica to the target's, so clients keep one address; then the target is verified
and only then is the bootstrap deleted. Two levels:
  etcd  the bootstrap's replica leaves the endpoint and stops (no write is acknowledged after the
        snapshot), its etcd is snapshotted, every target member restores that one snapshot into
        the target's whole membership and they start together, then the target's replicas join
        the endpoint. Refused when the target holds etcd data already: the restore would overwrite it.
  api   the target is created empty exactly as `create` plans it (learners promoted one at a time,
        quorum-checked by plan_create), its replicas serve outside the endpoint, the chosen objects
        are copied with state_migrate, then the target's replicas join and the bootstrap's leaves.
A bootstrap whose etcd answers without quorum is refused at both levels: its state cannot be read
as one consistent whole. With the target running and the bootstrap gone the plan is empty.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from kubectl_state.core.errors import InvalidInputError, UnsafeOperationError
from kubectl_state.core.etcd import quorum
from kubectl_state.core.etcd.quorum import MemberView
from kubectl_state.core.lifecycle.planner import plan_create
from kubectl_state.core.lifecycle.steps import Action, Step
from kubectl_state.core.lifecycle.topology import ApiServer, EtcdHost, Observed, ObservedMember, Topology


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


class PivotAction(enum.Enum):
    """The pivot's own steps; the others are the lifecycle's (steps.Action), with the same values."""

    COUNT_OBJECTS = "count_objects"
    COPY_OBJECTS = "copy_objects"
    STOP_WRITES = "stop_writes"
    RESTORE_MEMBER = "restore_member"
    START_RESTORED = "start_restored"
    VERIFY = "verify"
    DELETE_BOOTSTRAP = "delete_bootstrap"


_TEXT = {
    PivotAction.COUNT_OBJECTS: "count the objects the bootstrap serves through the API endpoint on {host}",
    PivotAction.COPY_OBJECTS: "copy the chosen objects from bootstrap {host} into the target (state_migrate)",
    PivotAction.STOP_WRITES: "stop bootstrap API server {host}, its files kept (writes stop until the target's "
                             "first replica joins the endpoint)",
    PivotAction.RESTORE_MEMBER: "restore etcd member {host} from the bootstrap's snapshot",
    PivotAction.START_RESTORED: "start restored etcd member {host} (the members start together)",
    PivotAction.VERIFY: "verify through the API endpoint on {host}: the target's etcd has quorum, every member "
                        "votes, every counted object is served",
    PivotAction.DELETE_BOOTSTRAP: "delete the bootstrap on {host}: stop its API server and etcd, wipe their data",
}


@dataclass(frozen=True)
class PivotStep:
    """One step of the pivot: `action` is a PivotAction or a lifecycle Action value."""

    action: str
    host: str
    text: str

    @classmethod
    def of(cls, action: PivotAction, host: str, detail: str = "") -> PivotStep:
        text = _TEXT[action].format(host=host)
        return cls(action.value, host, f"{text} ({detail})" if detail else text)

    @classmethod
    def lifecycle(cls, action: Action, host: str, detail: str = "", *, role: str = "") -> PivotStep:
        """A step of the lifecycle's own kinds, its wording prefixed with whose host it is."""
        text = Step(action, host, detail).text
        return cls(action.value, host, f"{role}: {text}" if role else text)

    def to_dict(self) -> dict[str, str]:
        return {"action": self.action, "host": self.host, "text": self.text}


@dataclass(frozen=True)
class PivotPlan:
    """The ordered steps of one pivot, with the shape of steps.Plan (lines, to_dict, hosts)."""

    level: PivotLevel
    steps: tuple[PivotStep, ...]
    notes: tuple[str, ...] = field(default=())
    operation: str = "pivot"

    @property
    def empty(self) -> bool:
        return not self.steps

    def hosts(self, action: PivotAction | Action) -> list[str]:
        return [s.host for s in self.steps if s.action == action.value]

    def index(self, action: PivotAction | Action, host: str) -> int:
        """Where the step of `action` for `host` is in the plan (ValueError when absent)."""
        for i, step in enumerate(self.steps):
            if step.action == action.value and step.host == host:
                return i
        raise ValueError(f"no {action.value} step for {host}")

    def lines(self) -> list[str]:
        if not self.steps:
            return [f"{self.operation}: nothing to do", *self.notes]
        return [f"{i}. {s.text}" for i, s in enumerate(self.steps, start=1)] + list(self.notes)

    def to_dict(self) -> dict[str, object]:
        return {"operation": self.operation, "level": self.level.value,
                "steps": [s.to_dict() for s in self.steps], "notes": list(self.notes)}


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


def _check_hosts(topology: Topology, bootstrap: Bootstrap) -> None:
    if topology.etcd_remove or topology.control_plane_remove:
        raise InvalidInputError("etcd_remove and control_plane_remove are for scale, not for the pivot")
    target = {h.name for h in topology.etcd} | {s.name for s in topology.control_plane} | {topology.endpoint}
    if bootstrap.name in target or bootstrap.apiserver.name in target:
        raise InvalidInputError(
            f"the bootstrap host {bootstrap.name} is wiped at the end of the pivot, so it may not also be a target "
            "host or the API endpoint"
        )


def _require_bootstrap_quorum(bootstrap: Bootstrap) -> None:
    members = [MemberView(id=m.id, name=m.name, is_learner=m.is_learner, healthy=m.healthy)
               for m in bootstrap.members]
    summary = quorum.summarize(members)
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


def _bootstrap_up(topology: Topology, observed: Observed, bootstrap: Bootstrap) -> list[PivotStep]:
    steps = []
    if not observed.endpoint_running:
        steps.append(PivotStep.lifecycle(Action.START_ENDPOINT, topology.endpoint))
    if not bootstrap.running:
        steps += [PivotStep.lifecycle(Action.FORM_CLUSTER, bootstrap.name, role="bootstrap"),
                  PivotStep.lifecycle(Action.START_APISERVER, bootstrap.name, role="bootstrap"),
                  PivotStep.lifecycle(Action.ADD_TO_ENDPOINT, bootstrap.name, role="bootstrap")]
    return steps


def _join_endpoint(servers: Iterable[ApiServer], observed: Observed) -> list[PivotStep]:
    return [PivotStep.lifecycle(Action.ADD_TO_ENDPOINT, s.name, role="target") for s in servers
            if observed.backends.get(s.name) != s.address]


def _etcd_level(topology: Topology, observed: Observed, bootstrap: Bootstrap) -> list[PivotStep]:
    steps = [
        PivotStep.of(PivotAction.COUNT_OBJECTS, topology.endpoint),
        # Out of the endpoint and stopped before the snapshot: no write is acknowledged and then lost.
        PivotStep.lifecycle(Action.REMOVE_FROM_ENDPOINT, bootstrap.name, role="bootstrap"),
        PivotStep.of(PivotAction.STOP_WRITES, bootstrap.name),
        PivotStep.lifecycle(Action.SNAPSHOT, bootstrap.name, role="bootstrap"),
    ]
    # Every member from the one snapshot into the whole membership, then started together: a
    # restored member waits for a quorum of its new cluster, so one at a time would never come up.
    steps += [PivotStep.of(PivotAction.RESTORE_MEMBER, h.name) for h in topology.etcd]
    steps += [PivotStep.of(PivotAction.START_RESTORED, h.name) for h in topology.etcd]
    for server in topology.control_plane:
        steps.append(PivotStep.lifecycle(Action.START_APISERVER, server.name, server.address, role="target"))
        steps += _join_endpoint([server], observed)
    return steps


def _api_level(topology: Topology, observed: Observed, bootstrap: Bootstrap, move: bool) -> list[PivotStep]:
    # The target as create plans it (its membership changes quorum-checked there); its replicas
    # join the endpoint only after the copy, so clients never see a half-filled cluster.
    created = plan_create(topology, observed)
    steps = [PivotStep.lifecycle(s.action, s.host, s.detail, role="target") for s in created.steps
             if s.action not in (Action.START_ENDPOINT, Action.ADD_TO_ENDPOINT)]
    steps += [PivotStep.of(PivotAction.COUNT_OBJECTS, topology.endpoint),
              PivotStep.of(PivotAction.COPY_OBJECTS, bootstrap.name, "then deleted from the bootstrap" if move else "")]
    steps += _join_endpoint(topology.control_plane, observed)
    steps.append(PivotStep.lifecycle(Action.REMOVE_FROM_ENDPOINT, bootstrap.name, role="bootstrap"))
    return steps


def plan_pivot(
    topology: Topology,
    observed: Observed,
    *,
    bootstrap: Bootstrap,
    level: str | PivotLevel = PivotLevel.ETCD,
    target_data: Sequence[str] = (),
    move: bool = False,
) -> PivotPlan:
    """The checked plan of a pivot from `bootstrap` into the target `topology`.

    `observed` is the target as it runs (its etcd members, the endpoint's backends);
    `target_data` the target hosts whose etcd data dir exists. Raises InvalidInputError for a
    bad level or inventory and UnsafeOperationError when the pivot would lose or overwrite state.
    """
    chosen = pivot_level(level)
    _check_hosts(topology, bootstrap)
    if observed.cluster_exists and not bootstrap.running and not bootstrap.has_data:
        return PivotPlan(chosen, (), (f"the target runs and the bootstrap on {bootstrap.name} is gone",))
    if chosen is PivotLevel.ETCD:
        _refuse_overwrite(observed, target_data)
    if bootstrap.running:
        _require_bootstrap_quorum(bootstrap)
    steps = _bootstrap_up(topology, observed, bootstrap)
    if chosen is PivotLevel.ETCD:
        steps += _etcd_level(topology, observed, bootstrap)
    else:
        steps += _api_level(topology, observed, bootstrap, move)
    steps += [PivotStep.of(PivotAction.VERIFY, topology.endpoint, f"{len(topology.etcd)} voters"),
              PivotStep.of(PivotAction.DELETE_BOOTSTRAP, bootstrap.name)]
    return PivotPlan(chosen, tuple(steps))
