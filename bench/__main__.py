"""`python -m bench [--quick] [NAME ...]`: run the benchmarks and print one table."""

from __future__ import annotations

import argparse
import importlib
import math
import pkgutil
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

from bench.harness import Case, Measurement, measure, median_of, ratio

BENCH_DIR = Path(__file__).resolve().parent


def discover(names: list[str]) -> list[str]:
    found = sorted(m.name for m in pkgutil.iter_modules([str(BENCH_DIR)]) if m.name.startswith("bench_"))
    return [n for n in found if not names or n.removeprefix("bench_") in names or n in names]


def run_case(case: Case) -> tuple[Measurement, Measurement | None]:
    def runs(argv: list[str]) -> Measurement:
        results = [measure(argv, case.env) for _ in range(case.repeat)]
        failed = [r for r in results if r.returncode != 0]
        if failed:
            raise SystemExit(f"{case.bench}/{case.name}: {argv[0]} exited {failed[0].returncode}:\n"
                             f"{failed[0].stderr[-2000:]}")
        return median_of(results)

    candidate = runs(case.command)
    baseline = runs(case.baseline) if case.baseline else None
    return candidate, baseline


def fmt(value: float, digits: int = 3) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.{digits}g}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small inputs, one repetition (a smoke run)")
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    args = parser.parse_args(argv)

    rows: list[list[str]] = []
    for module_name in discover(args.names):
        module = importlib.import_module(f"bench.{module_name}")
        bench = module_name.removeprefix("bench_")
        with ExitStack() as stack, tempfile.TemporaryDirectory(prefix=f"bench-{bench}-") as workdir:
            if hasattr(module, "cases"):
                cases: list[Case] = module.cases(stack, Path(workdir), args.quick)
            else:
                script = [sys.executable, str(BENCH_DIR / f"{module_name}.py")] + (["--quick"] if args.quick else [])
                cases = [Case(bench, "script", script, repeat=1)]
            for case in cases:
                if args.quick:
                    case.repeat = 1
                print(f"running {bench}/{case.name} ...", file=sys.stderr, flush=True)
                cand, base = run_case(case)
                figures = cand.figures()
                shown = ", ".join(f"{k}={figures[k]}" for k in (case.report_figures or figures.keys()) if k in figures)
                rows.append([
                    f"{bench}/{case.name}", fmt(cand.wall_s), fmt(cand.peak_rss_mb),
                    case.baseline_name or "-",
                    fmt(base.wall_s) if base else "-", fmt(base.peak_rss_mb) if base else "-",
                    fmt(ratio(cand.wall_s, base.wall_s)) if base else "-",
                    fmt(ratio(cand.peak_rss_mb, base.peak_rss_mb)) if base else "-",
                    shown or "-",
                ])

    header = ["case", "wall s", "peak MB", "baseline", "base wall s", "base MB", "wall ratio", "RSS ratio", "figures"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
