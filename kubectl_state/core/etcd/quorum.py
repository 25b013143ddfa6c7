"""The safety rules of etcd membership changes, as pure functions over member and health data.

Nothing here talks to etcd: callers gather the member list and each member's health (see
members.py) and ask these functions whether a change keeps the cluster able to commit.
The CLI and the Ansible modules call the same functions, so the rules live once.

Raft counts only voting members: a cluster of n voters needs quorum(n) of them to agree on
anything, including the membership change itself. Learners neither vote nor count.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from kubectl_state.core.errors import InvalidInputError, UnsafeOperationError


def quorum(voters: int) -> int:
    """How many of `voters` voting members must agree: a strict majority."""
    if voters < 0:
        raise ValueError(f"a cluster cannot have {voters} members")
    return voters // 2 + 1


def fault_tolerance(voters: int) -> int:
    """How many of `voters` voting members may fail while the cluster keeps its quorum."""
    if voters < 1:
        return 0
    return (voters - 1) // 2


class MemberLike(Protocol):
    """What the rules read of a member: etcd's Member (types.py) fits, so do test tables."""

    @property
    def id(self) -> int: ...

    @property
    def name(self) -> str: ...

    @property
    def is_learner(self) -> bool: ...


@dataclass(frozen=True)
class MemberView:
    """One member as the rules see it: identity, role, and whether it was seen healthy."""

    id: int
    name: str
    is_learner: bool
    healthy: bool

    @property
    def label(self) -> str:
        return f"{self.name or 'unstarted'} ({self.id:x})"


def views(members: Sequence[MemberLike], health: Mapping[int, bool]) -> list[MemberView]:
    """MemberViews from members and a health map by member id.

    A member missing from `health` counts as unhealthy: what was not seen answering must not
    be counted on to keep quorum.
    """
    return [
        MemberView(id=m.id, name=m.name, is_learner=m.is_learner, healthy=bool(health.get(m.id, False)))
        for m in members
    ]


@dataclass(frozen=True)
class QuorumSummary:
    voters: int
    healthy_voters: int
    learners: int
    quorum: int
    fault_tolerance: int

    @property
    def has_quorum(self) -> bool:
        return self.healthy_voters >= self.quorum

    @property
    def all_healthy(self) -> bool:
        return self.healthy_voters == self.voters


def summarize(members: Sequence[MemberView]) -> QuorumSummary:
    """Counts of one membership as MemberViews (see views())."""
    voters = [m for m in members if not m.is_learner]
    return QuorumSummary(
        voters=len(voters),
        healthy_voters=sum(1 for m in voters if m.healthy),
        learners=len(members) - len(voters),
        quorum=quorum(len(voters)),
        fault_tolerance=fault_tolerance(len(voters)),
    )


def _find(members: Sequence[MemberView], target: int) -> MemberView:
    for m in members:
        if m.id == target:
            return m
    raise InvalidInputError(f"no etcd member has ID {target:x}")


def _require_quorum_now(summary: QuorumSummary, action: str) -> None:
    # A membership change is itself a raft proposal: without a quorum it is never committed,
    # and etcd would leave the request hanging until it times out with an unknown outcome.
    if not summary.has_quorum:
        raise UnsafeOperationError(
            f"refusing to {action}: the cluster has no quorum ({summary.healthy_voters} of {summary.voters} "
            f"voting members healthy, {summary.quorum} needed), so the change could not be committed; "
            "bring members back, or restore the cluster from a snapshot"
        )


def check_remove(members: Sequence[MemberLike], health: Mapping[int, bool], target: int) -> None:
    """Refuse (UnsafeOperationError) to remove `target` when that would leave no quorum.

    Removing a learner never changes the quorum. Removing a voter is refused when the cluster
    has no quorum now, when it is the last voter, or when the healthy voters left afterwards
    would be fewer than the quorum of the smaller cluster (for instance removing a healthy
    member of three while another is down: one healthy voter of two, two needed).
    """
    seen = views(members, health)
    member = _find(seen, target)
    if member.is_learner:
        return
    before = summarize(seen)
    action = f"remove etcd member {member.label}"
    _require_quorum_now(before, action)
    remaining = [m for m in seen if m.id != target]
    after = summarize(remaining)
    if after.voters == 0:
        raise UnsafeOperationError(f"refusing to {action}: it is the last voting member of the cluster")
    if not after.has_quorum:
        down = [m.label for m in remaining if not m.is_learner and not m.healthy]
        raise UnsafeOperationError(
            f"refusing to {action}: the {after.voters} voting members left would have only "
            f"{after.healthy_voters} healthy, below their quorum of {after.quorum} "
            f"(unhealthy: {', '.join(down)}); repair or remove the unhealthy member(s) first"
        )


def check_add(members: Sequence[MemberLike], health: Mapping[int, bool], *, learner: bool) -> None:
    """Refuse to add a member (not yet started, so not yet healthy) when that would cost quorum.

    A learner does not vote, so it only needs the cluster to be able to commit the change. A
    new voter raises the quorum at once, while it is still down: the healthy voters must
    cover the quorum of the larger cluster. As in etcd's own strict reconfiguration check,
    growing a single healthy member to two is allowed, because it is how a restored cluster
    grows and there is no way around it.
    """
    before = summarize(views(members, health))
    kind = "learner" if learner else "voting member"
    action = f"add a {kind}"
    _require_quorum_now(before, action)
    if learner:
        return
    grown = before.voters + 1
    if before.voters == 1 and before.healthy_voters == 1:
        return
    if before.healthy_voters < quorum(grown):
        raise UnsafeOperationError(
            f"refusing to {action}: with it the cluster would have {grown} voters and need {quorum(grown)} "
            f"healthy, but only {before.healthy_voters} are healthy until the new member starts; "
            "add it as a learner (the default) and promote it once it has caught up"
        )


def check_promote(members: Sequence[MemberLike], health: Mapping[int, bool], target: int) -> None:
    """Refuse to promote `target` when it is not a learner or the grown cluster would lack quorum."""
    seen = views(members, health)
    member = _find(seen, target)
    action = f"promote etcd member {member.label}"
    if not member.is_learner:
        raise InvalidInputError(f"cannot {action}: it is already a voting member")
    before = summarize(seen)
    _require_quorum_now(before, action)
    grown = before.voters + 1
    healthy_after = before.healthy_voters + (1 if member.healthy else 0)
    if healthy_after < quorum(grown):
        raise UnsafeOperationError(
            f"refusing to {action}: the cluster would have {grown} voters and need {quorum(grown)} healthy, "
            f"but only {healthy_after} would be"
        )


def check_all_healthy(members: Sequence[MemberLike], health: Mapping[int, bool], action: str) -> None:
    """Refuse `action` unless every member (learners too) was seen healthy.

    What an upgrade needs: it restarts every member in turn, and each restart takes one voter
    away for a while; a member that is already down would be the second one missing.
    """
    seen = views(members, health)
    if not seen:
        raise UnsafeOperationError(f"refusing to {action}: the etcd cluster has no members")
    down = [m.label for m in seen if not m.healthy]
    if down:
        raise UnsafeOperationError(
            f"refusing to {action}: etcd member(s) {', '.join(down)} are not healthy, and the change restarts "
            "members one at a time; repair the cluster first (kubectl_state.control_plane.repair)"
        )


def check_restart(members: Sequence[MemberLike], health: Mapping[int, bool], target: int) -> None:
    """Refuse to stop `target` for a while (a restart, a binary swap) when the rest lack quorum.

    While it is down the other voters must still make up the quorum of the whole cluster, which
    stays the same size: a restart is not a removal.
    """
    seen = views(members, health)
    member = _find(seen, target)
    action = f"restart etcd member {member.label}"
    summary = summarize(seen)
    _require_quorum_now(summary, action)
    if member.is_learner:
        return
    left = summary.healthy_voters - (1 if member.healthy else 0)
    if left < summary.quorum:
        raise UnsafeOperationError(
            f"refusing to {action}: while it is down only {left} of {summary.voters} voting members would be "
            f"healthy, below the quorum of {summary.quorum}"
        )


def check_replace(members: Sequence[MemberLike], health: Mapping[int, bool], failed: Sequence[int]) -> None:
    """Refuse to replace the `failed` members unless they are all unhealthy and the rest hold quorum.

    A replacement removes the failed member, so the change is committed by the others alone: without
    a quorum among them nothing can be committed, and the cluster must be restored from a snapshot.
    """
    seen = views(members, health)
    targets = [_find(seen, t) for t in failed]
    healthy = [m.label for m in targets if m.healthy]
    if healthy:
        raise UnsafeOperationError(
            f"refusing to replace etcd member(s) {', '.join(healthy)}: they are healthy; repair replaces only "
            "failed members (use scale to remove a healthy one)"
        )
    summary = summarize(seen)
    if not summary.has_quorum:
        raise UnsafeOperationError(
            f"refusing to replace etcd member(s) {', '.join(m.label for m in targets)}: the cluster has no quorum "
            f"({summary.healthy_voters} of {summary.voters} voting members healthy, {summary.quorum} needed), so "
            "no membership change can be committed; restore the cluster from a snapshot "
            "(kubectl_state.control_plane.restore)"
        )
