"""Quorum-safe step plans for each lifecycle operation, checked before anything runs.

Each planner compares the topology the inventory asks for with what runs now and returns the
ordered steps that get from one to the other. While it lays out the steps it replays them on a
simulated membership and asks kubectl_state.core.etcd.quorum whether each membership change
(add a learner, promote, remove, restart) keeps the cluster able to commit; the first step that
would not is refused with UnsafeOperationError and no plan, so nothing is done at all.

The orders follow DESIGN.md ("Control-plane lifecycle"): capacity is added before any is taken
away, replicas leave the API endpoint before they stop, etcd members join as learners and are
promoted one at a time, and a snapshot is taken before members are restarted.
"""

from __future__ import annotations

import dataclasses
import inspect
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence

from kubectl_state.core.errors import InvalidInputError, UnsafeOperationError
from kubectl_state.core.etcd import quorum
from kubectl_state.core.etcd.quorum import MemberView
from kubectl_state.core.lifecycle.pivot import plan_pivot
from kubectl_state.core.lifecycle.recovery import plan_backup, plan_restore
from kubectl_state.core.lifecycle.steps import Action, Plan, Step
from kubectl_state.core.lifecycle.topology import EtcdHost, Observed, ObservedMember, Topology

#: Operations with a planner (backup and restore: kubectl_state.core.lifecycle.recovery; pivot:
#: kubectl_state.core.lifecycle.pivot).
OPERATIONS = ("create", "scale", "migrate", "repair", "upgrade", "backup", "restore", "delete", "pivot")


class _Simulation:
    """The membership as it will be after each planned step, for the quorum checks.

    A member that is started in the plan counts as healthy from then on: the playbooks wait
    for it to answer before the next step, and stop if it does not.
    """

    def __init__(self, members: Iterable[ObservedMember]) -> None:
        self.members = [m.view() for m in members]
        # IDs for members that do not exist yet: above every 64-bit etcd ID, so they never clash.
        self._new_ids = itertools.count(1 << 64)

    @property
    def health(self) -> dict[int, bool]:
        return {m.id: m.healthy for m in self.members}

    def _set(self, member_id: int, **changes: object) -> None:
        self.members = [dataclasses.replace(m, **changes) if m.id == member_id else m  # type: ignore[arg-type]
                        for m in self.members]

    def add_learner(self, name: str) -> int:
        quorum.check_add(self.members, self.health, learner=True)
        member_id = next(self._new_ids)
        self.members.append(MemberView(id=member_id, name=name, is_learner=True, healthy=False))
        return member_id

    def start(self, member_id: int) -> None:
        self._set(member_id, healthy=True)

    def promote(self, member_id: int) -> None:
        quorum.check_promote(self.members, self.health, member_id)
        self._set(member_id, is_learner=False)

    def remove(self, member_id: int) -> None:
        quorum.check_remove(self.members, self.health, member_id)
        self.members = [m for m in self.members if m.id != member_id]

    def restart(self, member_id: int) -> None:
        quorum.check_restart(self.members, self.health, member_id)


@dataclasses.dataclass(frozen=True)
class _Membership:
    """The observed members sorted against the inventory."""

    #: Wanted hosts that are members, by host name.
    wanted: dict[str, ObservedMember]
    #: Hosts of etcd_remove that are still members, by host name.
    leaving: dict[str, ObservedMember]
    #: Members the inventory does not mention at all.
    unknown: list[ObservedMember]


def _sort_members(topology: Topology, observed: Observed) -> _Membership:
    wanted: dict[str, ObservedMember] = {}
    leaving: dict[str, ObservedMember] = {}
    unknown: list[ObservedMember] = []
    kept = {h.name for h in topology.etcd}
    for member in observed.members:
        host = _host_of(topology, member)
        if host is None:
            unknown.append(member)
        elif host.name in kept:
            wanted[host.name] = member
        else:
            leaving[host.name] = member
    return _Membership(wanted, leaving, unknown)


def _host_of(topology: Topology, member: ObservedMember) -> EtcdHost | None:
    """The inventory host of a member: by name, or by peer URL while it has not started (no name yet)."""
    for host in topology.etcd + topology.etcd_remove:
        by_name = bool(member.name) and member.name == host.name
        by_peer = host.peer_url in member.peer_urls
        if by_name and not by_peer:
            raise InvalidInputError(
                f"etcd member {member.label} has peer URLs {', '.join(member.peer_urls)}, but the inventory gives "
                f"{host.name} the peer URL {host.peer_url}; a member's peer URL cannot change in place: remove the "
                "host (etcd_remove), then add it again"
            )
        if by_peer and member.name and not by_name:
            raise InvalidInputError(
                f"peer URL {host.peer_url} of inventory host {host.name} belongs to etcd member {member.label}"
            )
        if by_name or by_peer:
            return host
    return None


def _refuse_unknown(members: Sequence[ObservedMember], operation: str) -> None:
    if members:
        names = ", ".join(m.label for m in members)
        raise UnsafeOperationError(
            f"refusing to {operation}: etcd member(s) {names} are in the cluster but not in the inventory; "
            "add them to the etcd group to keep them, or to the etcd_remove group to take them out"
        )


def _require_cluster(observed: Observed, operation: str) -> None:
    if not observed.cluster_exists:
        raise UnsafeOperationError(
            f"refusing to {operation}: no etcd member in the inventory answers; create the control plane first "
            "(kubectl_state.control_plane.create), or restore it (kubectl_state.control_plane.restore)"
        )


def _join(sim: _Simulation, host: EtcdHost, member: ObservedMember | None) -> list[Step]:
    """Steps that make `host` a voting member: add it as a learner, start it, promote it."""
    steps = []
    if member is None:
        member_id = sim.add_learner(host.name)
        steps.append(Step(Action.ADD_LEARNER, host.name, f"peer {host.peer_url}"))
    elif not member.is_learner:
        return []
    else:
        member_id = member.id
    if member is None or not member.started or not member.healthy:
        steps.append(Step(Action.START_MEMBER, host.name))
    sim.start(member_id)
    sim.promote(member_id)
    steps.append(Step(Action.PROMOTE, host.name))
    return steps


def _apiservers_up(topology: Topology, observed: Observed) -> list[Step]:
    """Each wanted replica that is not in the endpoint: started, then added.

    A replica already serving behind the endpoint being moved away from runs: it is only added.
    """
    steps = []
    for server in topology.control_plane:
        if observed.backends.get(server.name) == server.address:
            continue
        if observed.leaving_backends.get(server.name) == server.address:
            steps.append(Step(Action.ADD_TO_ENDPOINT, server.name, f"it serves behind {topology.endpoint_remove}"))
        else:
            steps += [Step(Action.START_APISERVER, server.name, server.address),
                      Step(Action.ADD_TO_ENDPOINT, server.name)]
    return steps


def _apiservers_down(servers: Iterable[str], observed: Observed) -> list[Step]:
    """Each replica to take out: out of the endpoint, then stopped.

    One that serves only behind the endpoint being moved away from is stopped once that endpoint
    has stopped (the plan stops it before), so it has no endpoint to leave.
    """
    steps = []
    for name in servers:
        if name in observed.backends:
            steps += [Step(Action.REMOVE_FROM_ENDPOINT, name), Step(Action.STOP_APISERVER, name)]
        elif name in observed.leaving_backends:
            steps.append(Step(Action.STOP_APISERVER, name, "its endpoint has stopped"))
    return steps


def _endpoint_move(topology: Topology, observed: Observed, starting: Sequence[Step]) -> tuple[list[Step], list[Step]]:
    """(steps before the replicas start, steps once they serve) that move the endpoint, if it moves.

    The new endpoint starts empty, every wanted replica joins it, and only then does the old one
    stop: its clients (who follow the endpoint's address) find a full endpoint when they move.
    """
    if not topology.endpoint_moves:
        return [], []
    filled = {s.name for s in topology.control_plane if observed.backends.get(s.name) == s.address}
    filled |= {s.host for s in starting if s.action is Action.ADD_TO_ENDPOINT}
    if not filled:
        raise UnsafeOperationError(
            f"refusing to move the API endpoint from {topology.endpoint_remove} to {topology.endpoint}: the "
            "control_plane group is empty, so the new endpoint would have no API server to serve"
        )
    before = [] if observed.endpoint_running else [
        Step(Action.START_ENDPOINT, topology.endpoint, f"it moves here from {topology.endpoint_remove}")]
    after = [Step(Action.STOP_ENDPOINT, topology.endpoint_remove, f"its clients move to {topology.endpoint}")
             ] if observed.leaving_endpoint_running else []
    return before, after


def plan_create(topology: Topology, observed: Observed) -> Plan:
    """The endpoint, then the etcd members one at a time, then each API server added to the endpoint.

    Re-running it on a control plane that exists plans only what is missing.
    """
    steps: list[Step] = []
    notes: list[str] = []
    if not observed.endpoint_running:
        steps.append(Step(Action.START_ENDPOINT, topology.endpoint))
    if not topology.etcd:
        raise InvalidInputError("the inventory's etcd group is empty")
    if not observed.cluster_exists:
        first, rest = topology.etcd[0], topology.etcd[1:]
        steps += [Step(Action.FORM_CLUSTER, first.name, f"peer {first.peer_url}")]
        sim = _Simulation([ObservedMember(id=1, name=first.name, peer_urls=(first.peer_url,), is_learner=False,
                                          started=True, healthy=True)])
        members: dict[str, ObservedMember] = {}
    else:
        rest = topology.etcd
        sorted_members = _sort_members(topology, observed)
        members = sorted_members.wanted
        sim = _Simulation(observed.members)
        extra = sorted_members.unknown + list(sorted_members.leaving.values())
        if extra:
            notes.append("left alone (scale removes members): " + ", ".join(m.label for m in extra))
    for host in rest:
        steps += _join(sim, host, members.get(host.name))
    steps += _apiservers_up(topology, observed)
    return Plan("create", tuple(steps), tuple(notes))


def plan_scale(topology: Topology, observed: Observed, *, outdated_apiservers: Sequence[str] = ()) -> Plan:
    """To the inventory: new capacity first, then replicas out of the endpoint, then members out of etcd.

    Hosts to take out are listed in etcd_remove / control_plane_remove (they must still be
    reachable, to be stopped and wiped). A member the inventory does not mention is refused
    rather than guessed at. Every removal keeps the quorum of the voters left, and the cluster
    must otherwise be healthy, so a scale never runs on a degraded cluster. Running replicas
    whose flags change (`outdated_apiservers`: their etcd servers follow the etcd group) are
    replaced by surge once the new members serve, before any member is removed.
    """
    return _to_inventory("scale", topology, observed, outdated_apiservers)


def plan_migrate(topology: Topology, observed: Observed, *, outdated_apiservers: Sequence[str] = ()) -> Plan:
    """A running control plane moved to new hosts while it serves: a scale up to the new hosts and
    down from the old ones, in one plan, and the API endpoint moved when api_endpoint_remove names
    the host it leaves.

    New members join as learners one at a time and are promoted; the new endpoint starts, every new
    replica starts and joins it, and only then does the old endpoint stop; the old replicas stop;
    the old members leave one at a time. The quorum of the voters is checked at every membership
    change, so a plan that would take the old members out before the new ones vote is refused, as
    is a degraded cluster or an endpoint move with no replica to serve behind the new endpoint.
    """
    return _to_inventory("migrate", topology, observed, outdated_apiservers)


def _to_inventory(operation: str, topology: Topology, observed: Observed, outdated_apiservers: Sequence[str]) -> Plan:
    """The plan of scale and migrate: they differ in name only (migrate is the whole move at once)."""
    action = f"{operation} the control plane"
    _require_cluster(observed, action)
    membership = _sort_members(topology, observed)
    _refuse_unknown(membership.unknown, action)
    sim = _Simulation(observed.members)
    steps: list[Step] = []
    for host in topology.etcd:
        steps += _join(sim, host, membership.wanted.get(host.name))
    starting = _apiservers_up(topology, observed)
    endpoint_before, endpoint_after = _endpoint_move(topology, observed, starting)
    steps += endpoint_before + starting
    started = {s.host for s in starting if s.action is Action.START_APISERVER}
    known = [s.name for s in topology.control_plane]
    steps += [Step(Action.REPLACE_APISERVER, name, "its flags change")
              for name in order_like(outdated_apiservers, known) if name not in started]
    steps += endpoint_after
    steps += _apiservers_down((s.name for s in topology.control_plane_remove), observed)
    for host in topology.etcd_remove:
        member = membership.leaving.get(host.name)
        if member is None:
            continue
        sim.remove(member.id)
        _require_others_healthy(sim, f"remove etcd member {member.label}", operation)
        steps += [Step(Action.REMOVE_MEMBER, host.name), Step(Action.STOP_AND_WIPE, host.name)]
    _require_others_healthy(sim, action, operation)
    return Plan(operation, tuple(steps))


def _require_others_healthy(sim: _Simulation, action: str, operation: str = "scale") -> None:
    down = [m for m in sim.members if not m.healthy]
    if down:
        raise UnsafeOperationError(
            f"refusing to {action}: etcd member(s) {', '.join(m.label for m in down)} are not healthy; repair the "
            f"cluster first (kubectl_state.control_plane.repair), then {operation}"
        )


def plan_repair(topology: Topology, observed: Observed) -> Plan:
    """Replace exactly the failed members: remove each, wipe it, add it back as a learner, start it empty, promote.

    A failed member is an inventory member that is not healthy (down, or added by an earlier run
    and never started). The members left must hold quorum, otherwise only a restore can help.
    """
    _require_cluster(observed, "repair the control plane")
    membership = _sort_members(topology, observed)
    _refuse_unknown(membership.unknown, "repair the control plane")
    # In inventory order, so the plan reads like the inventory.
    failed = [(h, membership.wanted[h.name]) for h in topology.etcd
              if h.name in membership.wanted and not membership.wanted[h.name].healthy]
    notes = []
    missing = [h.name for h in topology.etcd if h.name not in membership.wanted]
    if missing:
        notes.append(f"not members, left to scale: {', '.join(missing)}")
    if not failed:
        return Plan("repair", (), tuple(notes))
    sim = _Simulation(observed.members)
    quorum.check_replace(sim.members, sim.health, [m.id for _, m in failed])
    steps: list[Step] = []
    for host, member in failed:
        sim.remove(member.id)
        steps += [Step(Action.REMOVE_MEMBER, host.name, f"failed: {member.reason or 'unhealthy'}"),
                  Step(Action.STOP_AND_WIPE, host.name)]
        steps += _join(sim, host, None)
    return Plan("repair", tuple(steps), tuple(notes))


def plan_upgrade(
    topology: Topology,
    observed: Observed,
    *,
    etcd_version: str | None = None,
    outdated_apiservers: Sequence[str] = (),
) -> Plan:
    """A snapshot, then each etcd member not yet at `etcd_version` in turn (in inventory order, as
    the playbook's serial play runs them), then each outdated API server replaced by surge.

    Refused unless every member is healthy and the membership is exactly the inventory: an
    upgrade restarts members one at a time, and one member already down would make the next
    restart cost quorum.
    """
    action = "upgrade the control plane"
    _require_cluster(observed, action)
    membership = _sort_members(topology, observed)
    _refuse_unknown(membership.unknown, action)
    sim = _Simulation(observed.members)
    quorum.check_all_healthy(sim.members, sim.health, action)
    not_members = [h.name for h in topology.etcd if h.name not in membership.wanted]
    learners = [m.label for m in observed.members if m.is_learner]
    if not_members or membership.leaving or learners:
        pending = not_members + list(membership.leaving) + learners
        raise UnsafeOperationError(
            f"refusing to {action}: the etcd membership does not match the inventory ({', '.join(pending)}); "
            "finish the scale (kubectl_state.control_plane.scale) first"
        )
    order = [h.name for h in topology.etcd]
    due = [(name, membership.wanted[name]) for name in order
           if etcd_version is None or membership.wanted[name].version != etcd_version]
    steps: list[Step] = []
    if due:
        source = next((name for name, m in membership.wanted.items() if m.is_leader), order[0])
        steps.append(Step(Action.SNAPSHOT, source, "before any member restarts"))
    for name, member in due:
        sim.restart(member.id)
        change = f"{member.version or 'unknown'} -> {etcd_version}" if etcd_version else ""
        steps.append(Step(Action.UPGRADE_MEMBER, name, change))
    known = {s.name for s in topology.control_plane}
    for name in outdated_apiservers:
        if name not in known:
            raise InvalidInputError(f"API server {name} to upgrade is not in the control_plane group")
    if outdated_apiservers and len(observed.backends) == 0:
        raise UnsafeOperationError(f"refusing to {action}: the API endpoint has no API servers to keep serving")
    steps += [Step(Action.REPLACE_APISERVER, name) for name in order_like(outdated_apiservers, known)]
    return Plan("upgrade", tuple(steps))


def order_like(names: Iterable[str], known: Iterable[str]) -> list[str]:
    """`names` without duplicates, in their first-seen order (a playbook's host order)."""
    seen: dict[str, None] = {}
    wanted = set(known)
    for name in names:
        if name in wanted:
            seen.setdefault(name, None)
    return list(seen)


def plan_delete(topology: Topology, observed: Observed) -> Plan:
    """Everything down, in the reverse order of create. Quorum is not kept: the cluster is going."""
    steps = _apiservers_down((s.name for s in topology.control_plane + topology.control_plane_remove), observed)
    members = _sort_members(topology, observed) if observed.cluster_exists else None
    for host in topology.etcd + topology.etcd_remove:
        if members is None or host.name in members.wanted or host.name in members.leaving:
            steps.append(Step(Action.STOP_AND_WIPE, host.name))
    if observed.endpoint_running:
        steps.append(Step(Action.STOP_ENDPOINT, topology.endpoint))
    notes = ["the data is not kept: take a snapshot first if it matters"] if observed.cluster_exists else []
    return Plan("delete", tuple(steps), tuple(notes))


Planner = Callable[..., Plan]

#: Operation name -> planner(topology, observed, **options). Backup, restore and pivot join here.
PLANNERS: Mapping[str, Planner] = {
    "create": plan_create,
    "scale": plan_scale,
    "migrate": plan_migrate,
    "backup": plan_backup,
    "restore": plan_restore,
    "repair": plan_repair,
    "upgrade": plan_upgrade,
    "delete": plan_delete,
    "pivot": plan_pivot,
}


def plan(operation: str, topology: Topology, observed: Observed, **options: object) -> Plan:
    """The checked plan of `operation`; UnsafeOperationError (nothing planned) when a step is unsafe."""
    planner = PLANNERS.get(operation)
    if planner is None:
        raise InvalidInputError(f"unknown lifecycle operation {operation!r}; known: {', '.join(PLANNERS)}")
    accepted = [name for name, p in inspect.signature(planner).parameters.items() if p.kind is p.KEYWORD_ONLY]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise InvalidInputError(f"the {operation} plan takes no option {', '.join(unknown)}; "
                                f"it takes: {', '.join(accepted) or 'none'}")
    return planner(topology, observed, **options)
