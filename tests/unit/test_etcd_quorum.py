"""The quorum rules of etcd membership changes, table-driven over member and health data."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from kubectl_state.core.errors import InvalidInputError, UnsafeOperationError
from kubectl_state.core.etcd.quorum import check_add, check_promote, check_remove, fault_tolerance, quorum


@dataclass(frozen=True)
class M:
    id: int
    name: str
    is_learner: bool = False


def cluster(spec: str) -> tuple[list[M], dict[int, bool]]:
    """'HHd' = three voters, the third down; 'l'/'L' a learner (down/healthy)."""
    members, health = [], {}
    for i, c in enumerate(spec, start=1):
        members.append(M(i, f"m{i}", is_learner=c in "lL"))
        health[i] = c in "HL"
    return members, health


@pytest.mark.parametrize(
    ("voters", "q", "tolerance"),
    [(0, 1, 0), (1, 1, 0), (2, 2, 0), (3, 2, 1), (4, 3, 1), (5, 3, 2), (6, 4, 2), (7, 4, 3)],
)
def test_quorum_is_a_strict_majority_and_tolerance_the_rest(voters: int, q: int, tolerance: int) -> None:
    assert quorum(voters) == q
    assert fault_tolerance(voters) == tolerance


@pytest.mark.parametrize(
    ("spec", "target", "allowed", "why"),
    [
        ("HHH", 1, True, ""),                   # 3 healthy: remove one, 2 of 2 left
        ("HHd", 3, True, ""),                   # repair: remove the dead one, 2 of 2 healthy left
        ("HHd", 1, False, "only 1 healthy"),    # remove a healthy one while another is down
        ("Hd", 1, False, "no quorum"),          # 2 members, one down: no quorum to commit anything
        ("Hd", 2, False, "no quorum"),
        ("Hdd", 2, False, "no quorum"),         # unhealthy cluster
        ("H", 1, False, "last voting member"),
        ("HHHHd", 1, True, ""),                 # 4 left, 3 healthy >= 3
        ("HHHdd", 1, False, "only 2 healthy"),  # 4 left, 2 healthy < 3
        ("HHHdd", 4, True, ""),                 # 4 left, 3 healthy
        ("HHl", 3, True, ""),                   # a learner never counts
        ("Hdl", 3, True, ""),                   # ... even in a cluster without quorum
        ("HHHl", 1, True, ""),                  # 2 of 2 voters left; the learner is not one
    ],
)
def test_check_remove(spec: str, target: int, allowed: bool, why: str) -> None:
    members, health = cluster(spec)
    if allowed:
        check_remove(members, health, target)
    else:
        with pytest.raises(UnsafeOperationError, match=why):
            check_remove(members, health, target)


def test_check_remove_counts_members_missing_from_the_health_map_as_down() -> None:
    members, _ = cluster("HHH")
    with pytest.raises(UnsafeOperationError, match="no quorum"):
        check_remove(members, {1: True}, 2)


def test_check_remove_of_unknown_member_is_invalid_input() -> None:
    members, health = cluster("HHH")
    with pytest.raises(InvalidInputError, match="no etcd member has ID 63"):
        check_remove(members, health, 99)


def test_refusal_names_the_member_and_the_unhealthy_ones() -> None:
    members, health = cluster("HHd")
    with pytest.raises(UnsafeOperationError) as info:
        check_remove(members, health, 1)
    assert "m1 (1)" in info.value.message and "unhealthy: m3 (3)" in info.value.message


@pytest.mark.parametrize(
    ("spec", "learner", "allowed"),
    [
        ("HHH", True, True),
        ("HHH", False, True),    # 4 voters need 3; 3 healthy
        ("HHd", True, True),     # a learner needs only the current quorum
        ("HHd", False, False),   # 4 voters need 3; 2 healthy until it starts
        ("Hdd", True, False),    # no quorum: nothing can be committed
        ("H", False, True),      # growing a single member to two, as etcd allows
        ("HH", False, True),     # 3 voters need 2; 2 healthy
        ("Hd", True, False),     # 2 voters, one down: no quorum
    ],
)
def test_check_add(spec: str, learner: bool, allowed: bool) -> None:
    members, health = cluster(spec)
    if allowed:
        check_add(members, health, learner=learner)
    else:
        with pytest.raises(UnsafeOperationError):
            check_add(members, health, learner=learner)


@pytest.mark.parametrize(
    ("spec", "target", "outcome"),
    [
        ("HHHL", 4, None),
        ("HHdL", 4, None),                      # 4 voters need 3: 2 + the learner
        ("HHdl", 4, UnsafeOperationError),      # the learner is down: only 2 of 4
        ("HddL", 4, UnsafeOperationError),      # no quorum now
        ("HHH", 1, InvalidInputError),          # not a learner
    ],
)
def test_check_promote(spec: str, target: int, outcome: type[Exception] | None) -> None:
    members, health = cluster(spec)
    if outcome is None:
        check_promote(members, health, target)
    else:
        with pytest.raises(outcome):
            check_promote(members, health, target)
