"""The host lab as a pytest fixture body: the hosts, or the test skipped where they cannot be made."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .hosts import HostLab, HostLabUnavailable, check_available


def lab_or_skip(count: int) -> Iterator[HostLab]:
    """`count` network-namespace hosts for as long as the fixture lives; a skip naming what is
    missing (root, iproute2, sshd) where they cannot be made."""
    try:
        check_available()
    except HostLabUnavailable as exc:
        pytest.skip(str(exc))
    with HostLab(count) as made:
        yield made
