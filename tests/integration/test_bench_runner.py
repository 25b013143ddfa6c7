"""The benchmark runner measures whole processes and prints ratios against its baseline."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench.harness import measure

ROOT = Path(__file__).resolve().parents[2]


def test_measure_reports_the_childs_own_peak_memory_and_exit_status() -> None:
    # The child holds 200 MiB at once; the parent (pytest) never does, so the figure is the child's.
    # And while this process holds 300 MiB itself, a tiny command must not look as large:
    # Linux counts memory from before exec() in a child's peak, which the launcher avoids.
    ballast = bytearray(300 * 1024 * 1024)
    ballast[::4096] = b"x" * len(ballast[::4096])
    small = measure([sys.executable, "-c", "pass"])
    tiny = measure(["true"])
    del ballast
    assert tiny.peak_rss_mb < 30
    big = measure([sys.executable, "-c", "b = bytearray(200 * 1024 * 1024); b[::4096] = b'x' * len(b[::4096])"])
    assert small.returncode == 0 and big.returncode == 0
    assert big.peak_rss_mb >= 200
    assert small.peak_rss_mb < 100
    failing = measure([sys.executable, "-c", "import sys; print('{\"objects\": 3}'); sys.exit(3)"])
    assert failing.returncode == 3
    assert failing.figures() == {"objects": 3}


def test_make_bench_quick_prints_one_table_with_ratios() -> None:
    result = subprocess.run([sys.executable, "-m", "bench", "--quick", "cli_startup"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    header, rule, *rows = result.stdout.splitlines()
    assert header.split()[:3] == ["case", "wall", "s"]
    assert set(rule.replace(" ", "")) == {"-"}
    (row,) = [r for r in rows if r.startswith("cli_startup/version-client")]
    wall_ratio = float(row.split()[-3])
    assert wall_ratio > 0
