"""Measuring whole processes: wall time and peak resident memory of one child each."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LAUNCHER = Path(__file__).resolve().parent / "launch.py"


@dataclass(frozen=True)
class Measurement:
    wall_s: float
    peak_rss_mb: float
    returncode: int
    stdout: str
    stderr: str

    def figures(self) -> dict[str, Any]:
        """Numbers the process reported itself, as JSON objects on lines of stdout."""
        found: dict[str, Any] = {}
        for raw in self.stdout.splitlines():
            line = raw.strip()
            if line.startswith("{") and line.endswith("}"):
                try:
                    found.update(json.loads(line))
                except ValueError:
                    continue
        return found


@dataclass
class Case:
    """One comparison: `command` against `baseline`, each run `repeat` times (median kept)."""

    bench: str
    name: str
    command: list[str]
    baseline: list[str] | None = None
    baseline_name: str = ""
    repeat: int = 3
    env: dict[str, str] | None = None
    #: Figures the process prints that matter for this case (shown in the table).
    report_figures: Sequence[str] = field(default_factory=tuple)


def measure(argv: Sequence[str], env: dict[str, str] | None = None) -> Measurement:
    """Run argv to completion through bench/launch.py, which reports the command's own wall
    time and peak RSS (see there for why the runner cannot measure the memory itself).

    Output goes to temporary files rather than pipes, so the command can never block on a
    full pipe that nobody reads.
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err, \
            tempfile.NamedTemporaryFile("r", suffix=".json") as result:
        subprocess.run([sys.executable, str(LAUNCHER), result.name, *argv], env=env, stdout=out, stderr=err,
                       text=True, check=True)
        figures = json.load(result)
        out.seek(0)
        err.seek(0)
        return Measurement(figures["wall_s"], figures["peak_rss_kb"] / 1024, figures["returncode"],
                           out.read(), err.read())


def median_of(runs: Sequence[Measurement]) -> Measurement:
    walls = [r.wall_s for r in runs]
    mid = sorted(runs, key=lambda r: r.wall_s)[len(runs) // 2]
    return Measurement(statistics.median(walls), max(r.peak_rss_mb for r in runs), mid.returncode,
                       mid.stdout, mid.stderr)


def ratio(value: float, baseline: float) -> float:
    return value / baseline if baseline else float("nan")


def environ(**extra: str) -> dict[str, str]:
    return {**os.environ, **extra}
