"""Fixtures of tests/hostile: hypothesis profiles for the fuzz tests, and a small disk.

`make test` runs the fuzz properties under the bounded "hostile" profile (about half a
minute in all); `make fuzz` sets KUBECTL_STATE_FUZZ=long for far more examples (a number
instead of "long" asks for that many). Neither is derandomised, so every run explores new
inputs; a failure prints the blob that reproduces it (`pytest --hypothesis-seed=N` replays
a run).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

FUZZ_ENV = "KUBECTL_STATE_FUZZ"

_COMMON = {
    "deadline": None,  # a busy 2-core machine makes per-example times meaningless
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    "print_blob": True,  # a failure prints what reproduces it
}
settings.register_profile("hostile", max_examples=120, **_COMMON)  # type: ignore[arg-type]
settings.register_profile("hostile-long", max_examples=5000, **_COMMON)  # type: ignore[arg-type]

# "long" for `make fuzz`; a number for that many examples per property.
_ASKED = os.environ.get(FUZZ_ENV, "")
if _ASKED.isdigit():
    settings.register_profile("hostile-custom", max_examples=int(_ASKED), **_COMMON)  # type: ignore[arg-type]
PROFILE = "hostile-long" if _ASKED == "long" else "hostile-custom" if _ASKED.isdigit() else "hostile"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """`small_disk(size)`: a tmpfs of `size` (mount's syntax: "1m") under tmp_path, unmounted
    at teardown; skips where mounting is not permitted."""
    mounted: list[Path] = []

    def mount(size: str) -> Path:
        if os.geteuid() != 0:
            pytest.skip("mounting a tmpfs needs root")
        point = tmp_path / f"disk-{len(mounted)}"
        point.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(point)],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
        mounted.append(point)
        return point

    try:
        yield mount
    finally:
        for point in mounted:
            if subprocess.run(["umount", str(point)], capture_output=True, check=False).returncode != 0:
                subprocess.run(["umount", "-l", str(point)], capture_output=True, check=False)
