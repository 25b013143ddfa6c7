"""The quorum rules the lifecycle planner adds to core/etcd/quorum.py: restart, all healthy, replace."""

from __future__ import annotations

import pytest

from kubectl_state.core.errors import UnsafeOperationError
from kubectl_state.core.etcd.quorum import check_all_healthy, check_replace, check_restart
from tests.unit.test_etcd_quorum import cluster


@pytest.mark.parametrize(
    ("spec", "target", "allowed", "why"),
    [
        ("HHH", 1, True, ""),               # 2 of 3 stay up while it restarts
        ("HHd", 1, False, "only 1 of 3"),  # a second member down would cost quorum
        ("HHd", 3, True, ""),               # restarting the one that is down costs nothing more
        ("HH", 1, False, "only 1 of 2"),
        ("HHl", 3, True, ""),               # a learner never counts
    ],
)
def test_check_restart(spec: str, target: int, allowed: bool, why: str) -> None:
    members, health = cluster(spec)
    if allowed:
        check_restart(members, health, target)
    else:
        with pytest.raises(UnsafeOperationError, match=why):
            check_restart(members, health, target)


def test_check_all_healthy_names_the_members_that_are_down() -> None:
    members, health = cluster("HHdl")
    with pytest.raises(UnsafeOperationError, match=r"m3 \(3\), m4 \(4\) are not healthy"):
        check_all_healthy(members, health, "upgrade")
    check_all_healthy(*cluster("HHL"), "upgrade")


@pytest.mark.parametrize(
    ("spec", "failed", "why"),
    [
        ("HHd", [3], ""),
        ("HHHdd", [4, 5], ""),
        ("Hdd", [2, 3], "no quorum"),
        ("HHd", [1], "they are healthy"),
    ],
)
def test_check_replace(spec: str, failed: list[int], why: str) -> None:
    members, health = cluster(spec)
    if not why:
        check_replace(members, health, failed)
    else:
        with pytest.raises(UnsafeOperationError, match=why):
            check_replace(members, health, failed)
