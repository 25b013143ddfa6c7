"""The plans of the backup and restore playbooks, shown before they run like every lifecycle plan.

A backup changes nothing in the control plane: its plan says where the snapshot is streamed
from (the leader, as the etcd_snapshot module tries it first), whether an API-level export
follows, and what retention and schedule apply. It is refused when no etcd member answers:
there would be nothing to back up.

A restore replaces the etcd cluster on purpose, so quorum is not kept; its checks are about
not leaving the old cluster half alive: every member that runs must be one the inventory
restores (a member left out would go on serving the old data to whoever still reaches it), and
the hosts being taken out by a scale cannot take part.
"""

from __future__ import annotations

from kubectl_state.core.errors import ConnectionFailed, InvalidInputError, UnsafeOperationError
from kubectl_state.core.lifecycle.steps import Action, Plan, Step
from kubectl_state.core.lifecycle.topology import Observed, ObservedMember, Topology


def plan_backup(
    topology: Topology,
    observed: Observed,
    *,
    backup_host: str,
    export: bool = True,
    retention: str = "",
    schedule: str = "",
    unschedule: bool = False,
) -> Plan:
    """Snapshot (from the leader, else the first healthy member), export, retention, schedule."""
    if not backup_host:
        raise InvalidInputError("a backup needs the host that keeps it (the first host of the group backup)")
    source = _snapshot_source(topology, observed.members)
    if source is None:
        raise ConnectionFailed(
            "no etcd member of the inventory answers: there is nothing to take a snapshot from; "
            "check the members (kubectl_state.control_plane.etcd_info), or restore from an earlier backup"
        )
    member, note = source
    steps = [Step(Action.SNAPSHOT, member, f"into {backup_host}")]
    notes = [note] if note else []
    if export:
        steps.append(Step(Action.EXPORT, topology.endpoint, f"into {backup_host}"))
    if retention:
        steps.append(Step(Action.RETENTION, backup_host, retention))
    if schedule and unschedule:
        raise InvalidInputError("a backup schedule is either installed or removed, not both")
    if schedule:
        steps.append(Step(Action.SCHEDULE, backup_host, schedule))
    elif unschedule:
        steps.append(Step(Action.UNSCHEDULE, backup_host))
    return Plan("backup", tuple(steps), tuple(notes))


def _snapshot_source(topology: Topology, members: tuple[ObservedMember, ...]) -> tuple[str, str] | None:
    """The member the snapshot comes from, and a note when it is not a healthy leader."""
    leader = next((m for m in members if m.is_leader and m.healthy), None)
    if leader is not None:
        return leader.name, ""
    healthy = next((m for m in members if m.healthy and not m.is_learner), None)
    if healthy is not None:
        return healthy.name, "no healthy leader answered: the snapshot comes from the first healthy member"
    answering = next((m for m in members if m.started and m.name), None)
    if answering is not None:
        return answering.name, (f"no etcd member is healthy ({answering.label}: {answering.reason or 'unhealthy'}); "
                                "a snapshot of a member without quorum may miss the last writes")
    return None


def plan_restore(
    topology: Topology,
    observed: Observed,
    *,
    snapshot: str,
    backup_host: str = "",
    archive: str = "",
) -> Plan:
    """Stage the snapshot, stop the API servers and every member, restore each member's data dir,
    start the endpoint, the members together, then each API server into the endpoint; then the
    optional API-level import. A second run finds every member holding this restore and skips
    the stop/restore steps (the playbook says so as it goes)."""
    if not snapshot:
        raise InvalidInputError("a restore needs the snapshot to restore (restore_snapshot)")
    if topology.etcd_remove or topology.control_plane_remove or topology.endpoint_moves:
        raise InvalidInputError(
            "a restore forms a new cluster of the etcd group as it is; finish the scale or migration first "
            "(the groups etcd_remove, control_plane_remove and api_endpoint_remove must be empty)"
        )
    if not topology.etcd:
        raise InvalidInputError("the inventory's etcd group is empty")
    names = {h.name for h in topology.etcd}
    peers = {h.peer_url for h in topology.etcd}
    strangers = [m for m in observed.members
                 if m.started and m.name not in names and not peers.intersection(m.peer_urls)]
    if strangers:
        raise UnsafeOperationError(
            "refusing to restore: etcd member(s) " + ", ".join(m.label for m in strangers) + " run in the cluster "
            "but are not in the inventory's etcd group; they would keep serving the old data. Add them to the "
            "etcd group (they are restored too), or stop them first"
        )
    steps: list[Step] = [Step(Action.STAGE_SNAPSHOT, h.name, snapshot) for h in topology.etcd]
    for server in topology.control_plane:
        if server.name in observed.backends:
            steps.append(Step(Action.PAUSE_APISERVER, server.name))
    steps += [Step(Action.STOP_MEMBER, h.name) for h in topology.etcd]
    steps += [Step(Action.RESTORE_MEMBER, h.name) for h in topology.etcd]
    if not observed.endpoint_running:
        steps.append(Step(Action.START_ENDPOINT, topology.endpoint))
    steps.append(Step(Action.START_RESTORED, ", ".join(h.name for h in topology.etcd),
                      "then compacted at the snapshot's revision when etcdutl could not move revisions forward"))
    for server in topology.control_plane:
        steps += [Step(Action.START_APISERVER, server.name, server.address), Step(Action.ADD_TO_ENDPOINT, server.name)]
    if archive:
        steps.append(Step(Action.IMPORT, topology.endpoint, f"{archive}, from {backup_host or 'the controller'}"))
    notes = ["steps that stop and restore members are skipped when every member already holds this snapshot "
             "restored into this membership (a second run changes nothing)"]
    if observed.cluster_exists and any(m.healthy for m in observed.members):
        notes.append("the running cluster is replaced: writes made since the snapshot are lost")
    return Plan("restore", tuple(steps), tuple(notes))
