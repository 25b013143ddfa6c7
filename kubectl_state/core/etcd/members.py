"""etcd membership operations with their safety checks: list with health, add, promote, remove.

Each operation first looks at the whole cluster (members and each member's health, probed
in parallel with a short timeout) and asks quorum.py whether the change is safe; `force`
skips that question, never etcd's own checks. The CLI and the Ansible modules both call
these functions.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from kubectl_state.core.errors import (
    ConnectionFailed,
    EtcdError,
    InvalidInputError,
    OperationTimeout,
    UnsafeOperationError,
)
from kubectl_state.core.etcd import quorum
from kubectl_state.core.etcd.client import EndpointStatus, EtcdClient, Member

#: Seconds a health probe may take before the member counts as unhealthy.
PROBE_TIMEOUT = 3.0

#: Seconds a membership change waits for the members to look healthy again before it is refused.
#: Right after a member joins, is promoted or leaves, or leadership moves, /health answers false
#: for a moment on members that are fine; a change checked in that moment would be refused for
#: nothing. Only a refusal that health alone causes is waited out (see _when_settled).
SETTLE_TIMEOUT = 20.0

#: etcd's refusal to promote a learner that has not caught up (etcdserver.ErrLearnerNotReady).
LEARNER_NOT_READY = "can only promote a learner member which is in sync with leader"
#: etcd's refusal to add a member unless the leader has heard from every voter for the last
#: 5 seconds (etcdserver.ErrUnhealthy); a cluster that has just (re)started says it too.
CLUSTER_UNHEALTHY = "etcdserver: unhealthy cluster"


@dataclass(frozen=True)
class MemberState:
    """One member with what a probe of its first client URL found."""

    member: Member
    #: The client URL probed; None for a member that has not started (it has none yet).
    endpoint: str | None
    healthy: bool
    #: Why it is unhealthy ("" when healthy).
    reason: str
    status: EndpointStatus | None

    @property
    def id(self) -> int:
        return self.member.id

    @property
    def name(self) -> str:
        return self.member.name

    @property
    def is_learner(self) -> bool:
        return self.member.is_learner

    @property
    def is_leader(self) -> bool:
        return self.status is not None and self.status.leader != 0 and self.status.leader == self.status.member_id

    @property
    def started(self) -> bool:
        return bool(self.member.client_urls)

    def to_dict(self) -> dict[str, object]:
        s = self.status
        return {
            "id": f"{self.member.id:x}",
            "name": self.member.name,
            "peerURLs": list(self.member.peer_urls),
            "clientURLs": list(self.member.client_urls),
            "isLearner": self.member.is_learner,
            "started": self.started,
            "healthy": self.healthy,
            "reason": self.reason,
            "isLeader": self.is_leader,
            "version": s.version if s else None,
            "dbSize": s.db_size if s else None,
            "raftTerm": s.raft_term if s else None,
            "raftIndex": s.raft_index if s else None,
            "raftAppliedIndex": s.raft_applied_index if s else None,
            "revision": s.revision if s else None,
        }


def probe(client: EtcdClient, member: Member, timeout: float = PROBE_TIMEOUT) -> MemberState:
    """Status and health of one member through its first client URL.

    A voter is healthy when etcd's /health says so. A learner always fails /health (it
    serves no linearizable reads), so it counts as healthy when it answers status with a
    known leader and no errors: that is all a learner can show.
    """
    if not member.client_urls:
        return MemberState(member, None, False, "not started", None)
    endpoint = member.client_urls[0]
    try:
        status = client.status(endpoint, timeout=timeout)
    except (EtcdError, ConnectionFailed) as exc:
        return MemberState(member, endpoint, False, str(exc), None)
    if status.errors:
        return MemberState(member, endpoint, False, "; ".join(status.errors), status)
    if member.is_learner:
        if not status.leader:
            return MemberState(member, endpoint, False, "no leader", status)
        return MemberState(member, endpoint, True, "", status)
    healthy, reason = client.health(endpoint, timeout=timeout)
    return MemberState(member, endpoint, healthy, "" if healthy else (reason or "unhealthy"), status)


def cluster_state(client: EtcdClient, *, timeout: float = PROBE_TIMEOUT) -> list[MemberState]:
    """Every member of the cluster with its health, probed in parallel."""
    members = client.member_list()
    if not members:
        return []
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(16, len(members))) as pool:
        return list(pool.map(lambda m: probe(client, m, timeout), members))


def health_map(states: Sequence[MemberState]) -> dict[int, bool]:
    return {s.id: s.healthy for s in states}


def _when_settled(
    client: EtcdClient,
    check: Callable[[Sequence[MemberState], dict[int, bool]], None],
    *,
    settle: float,
    timeout: float = PROBE_TIMEOUT,
    on_wait: Callable[[str], None] | None = None,
) -> list[MemberState]:
    """The cluster's state once `check` (a quorum rule) passes on it, re-probed for up to `settle` seconds.

    A refusal that would stand even with every member healthy (removing the last voter, say)
    is raised at once: waiting cannot change it. A refusal caused by members that do not answer
    /health is retried, and raised as it is if they are still not healthy after `settle`.
    """
    deadline = time.monotonic() + settle
    while True:
        states = cluster_state(client, timeout=timeout)
        try:
            check(states, health_map(states))
            return states
        except UnsafeOperationError as refused:
            check(states, {s.id: True for s in states})
            if time.monotonic() >= deadline:
                raise refused from None
            if on_wait is not None:
                down = ", ".join(f"{s.name or 'unstarted'} ({s.reason})" for s in states if not s.healthy)
                on_wait(f"waiting for etcd member(s) {down} to answer as healthy")
            time.sleep(1.0)


def resolve(members: Sequence[Member], ident: str) -> Member:
    """A member by name, by hex ID (as etcdctl prints it) or by decimal ID."""
    ident = ident.strip()
    by_name = [m for m in members if m.name and m.name == ident]
    if len(by_name) == 1:
        return by_name[0]
    for base in (16, 10):
        try:
            wanted = int(ident, base)
        except ValueError:
            continue
        for m in members:
            if m.id == wanted:
                return m
    known = ", ".join(f"{m.name or 'unstarted'} ({m.id:x})" for m in members)
    raise InvalidInputError(f"no etcd member is named or has the ID {ident!r} (members: {known})")


@dataclass(frozen=True)
class AddedMember:
    member: Member
    name: str
    #: --initial-cluster for the new member's first start: every member, itself included.
    initial_cluster: str
    initial_cluster_state: str = "existing"


def add_member(
    client: EtcdClient,
    name: str,
    peer_urls: Sequence[str],
    *,
    learner: bool = True,
    force: bool = False,
    timeout: float = PROBE_TIMEOUT,
    wait: float = 15.0,
    settle: float = SETTLE_TIMEOUT,
    on_wait: Callable[[str], None] | None = None,
) -> AddedMember:
    """Add a member (a learner unless `learner` is False) after checking that it keeps quorum.

    etcd itself refuses additions until its leader has been in touch with every voter for
    five seconds ("unhealthy cluster"); that refusal is retried for up to `wait` seconds,
    which covers a cluster that has just started or just had a member restarted.
    """
    if not name:
        raise InvalidInputError("the new etcd member needs a name (its --name when it starts)")
    if isinstance(peer_urls, str) or not peer_urls:
        raise InvalidInputError("the new etcd member needs at least one peer URL")
    if force:
        states = cluster_state(client, timeout=timeout)
    else:
        states = _when_settled(client, lambda ss, health: quorum.check_add(ss, health, learner=learner),
                               settle=settle, timeout=timeout, on_wait=on_wait)
    member = _while_etcd_says_unhealthy(lambda: client.member_add(list(peer_urls), learner=learner),
                                        wait=wait, on_wait=on_wait)
    return AddedMember(member=member, name=name,
                       initial_cluster=initial_cluster_for([s.member for s in states], name, peer_urls))


_T = TypeVar("_T")


def _while_etcd_says_unhealthy(change: Callable[[], _T], *, wait: float,
                               on_wait: Callable[[str], None] | None) -> _T:
    """`change` (a membership change), retried for up to `wait` seconds while etcd answers "unhealthy cluster".

    etcd refuses to add or remove a voting member until its leader has heard from the voting
    members for the last 5 seconds, which a cluster that has just started, restarted a member
    or changed its membership has not.
    """
    deadline = time.monotonic() + wait
    while True:
        try:
            return change()
        except EtcdError as exc:
            if CLUSTER_UNHEALTHY not in exc.message or time.monotonic() >= deadline:
                raise
            if on_wait is not None:
                on_wait("etcd refuses membership changes until its leader has heard from the voting members for "
                        "5 seconds; waiting")
            time.sleep(0.5)


def initial_cluster_for(members: Sequence[Member], name: str, peer_urls: Sequence[str]) -> str:
    """--initial-cluster for the first start of member `name` (already added, not started):
    every other member as etcd lists it, then this one. Also what a retry needs when the
    member was added by an earlier run that failed before starting it."""
    own = set(peer_urls)
    parts = []
    for member in members:
        if own & set(member.peer_urls):
            continue
        # An unstarted member has no name yet; etcd still needs it in the list, and cannot
        # start the new one if it is missing.
        parts += [f"{member.name or f'{member.id:x}'}={url}" for url in member.peer_urls]
    parts += [f"{name}={url}" for url in peer_urls]
    return ",".join(parts)


def promote_member(
    client: EtcdClient,
    member_id: int,
    *,
    timeout: float = 60.0,
    poll: float = 0.5,
    force: bool = False,
    on_wait: Callable[[str], None] | None = None,
) -> Member:
    """Promote a learner to a voter, waiting up to `timeout` seconds for it to catch up.

    etcd refuses to promote a learner whose log is not close to the leader's; that refusal
    is retried (and reported through `on_wait` with the learner's and the leader's raft
    indexes) until the learner is in sync or `timeout` runs out (OperationTimeout).
    """
    deadline = time.monotonic() + timeout
    if force:
        states = cluster_state(client)
    else:
        # A learner started a moment ago may not answer yet: waited out like any health refusal.
        states = _when_settled(
            client,
            lambda ss, health: quorum.check_promote(ss, health, member_id) if any(s.id == member_id for s in ss)
            else None,
            settle=min(timeout, SETTLE_TIMEOUT), on_wait=on_wait)
    target = next((s for s in states if s.id == member_id), None)
    if target is None:
        raise InvalidInputError(f"no etcd member has ID {member_id:x}")
    if force and not target.is_learner:
        raise InvalidInputError(f"etcd member {target.name or member_id} ({member_id:x}) is already a voting member")
    while True:
        try:
            client.member_promote(member_id)
        except EtcdError as exc:
            if LEARNER_NOT_READY not in exc.message:
                raise
            progress = _catch_up(client, states, target)
            if time.monotonic() >= deadline:
                raise OperationTimeout(
                    f"learner {target.name or 'unstarted'} ({member_id:x}) did not catch up with the leader "
                    f"within {timeout:g}s{progress}; etcd still answers: {exc.message}",
                    endpoint=target.endpoint,
                ) from None
            if on_wait is not None:
                on_wait(f"learner {target.name} ({member_id:x}) is not in sync with the leader yet{progress}; waiting")
            time.sleep(poll)
            continue
        break
    promoted = next((m for m in client.member_list() if m.id == member_id), target.member)
    return promoted


def _check_remove_known(states: Sequence[MemberState], health: dict[int, bool], member_id: int) -> None:
    """quorum.check_remove, for a member that exists (a missing one is InvalidInputError, raised by the caller)."""
    if any(s.id == member_id for s in states):
        quorum.check_remove(states, health, member_id)


def _catch_up(client: EtcdClient, states: Sequence[MemberState], target: MemberState) -> str:
    """" (applied index A of the leader's L)" when both answer, else ""."""
    leader = next((s for s in states if s.is_leader and s.endpoint), None)
    if target.endpoint is None or leader is None or leader.endpoint is None:
        return ""
    try:
        mine = client.status(target.endpoint, timeout=PROBE_TIMEOUT)
        theirs = client.status(leader.endpoint, timeout=PROBE_TIMEOUT)
    except (EtcdError, ConnectionFailed):
        return ""
    return f" (raft applied index {mine.raft_applied_index} of the leader's {theirs.raft_index})"


def remove_member(
    client: EtcdClient,
    member_id: int,
    *,
    force: bool = False,
    settle: float = SETTLE_TIMEOUT,
    wait: float = 15.0,
    on_wait: Callable[[str], None] | None = None,
) -> MemberState:
    """Remove a member after checking that the rest keeps quorum; returns what it was.

    A refusal because some member does not answer as healthy is re-checked for up to `settle`
    seconds (a member removed just before leaves the others briefly unhealthy), and etcd's own
    "unhealthy cluster" refusal for up to `wait` seconds, as for add_member. A leader is
    asked to hand over leadership first: a removal proposed while the leader removes itself
    tends to time out even though it applied.
    """
    if force:
        states = cluster_state(client)
    else:
        states = _when_settled(client, lambda ss, health: _check_remove_known(ss, health, member_id),
                               settle=settle, on_wait=on_wait)
    target = next((s for s in states if s.id == member_id), None)
    if target is None:
        raise InvalidInputError(f"no etcd member has ID {member_id:x}")
    if target.is_leader:
        heir = next((s for s in states if s.id != member_id and s.healthy and not s.is_learner), None)
        if heir is not None:
            # Only a courtesy: the removal below still works, just less smoothly.
            with contextlib.suppress(EtcdError, ConnectionFailed):
                client.move_leader(heir.id)
    _while_etcd_says_unhealthy(lambda: client.member_remove(member_id), wait=wait, on_wait=on_wait)
    return target
