"""`make bench`: every benchmark, one after another, then one table of ratios.

Each benchmark runs as its own process (`.venv/bin/python bench/<name>.py ...`) with its
output shown as it comes, and with `bench.common.RESULTS_FILE` naming a file where its
`record(...)` calls put each figure and the reference measured beside it in the same run.
At the end the figures of every benchmark are printed as one table: metric, leadflow, the
reference (what it is), the ratio (1 = as good as the reference), the goal and whether the
ratio meets it. A benchmark that fails does not stop the others; the run then exits 1.

    .venv/bin/python bench/run_all.py [--quick] [--only NAME ...]

`--quick` runs each benchmark shorter (smaller workloads, shorter windows): for a look, not
for figures to quote. Nothing here asserts a timing; a goal that is not met is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: find `bench`

from bench.common import REPO_ROOT, RESULTS_FILE, load_average, render


@dataclass(frozen=True)
class Benchmark:
    name: str
    arguments: tuple[str, ...]  # the script and its options
    quick: tuple[str, ...] = ()  # added with --quick

    def command(self, quick: bool) -> list[str]:
        return [sys.executable, "-u", *self.arguments, *(self.quick if quick else ())]


BENCHMARKS = (
    Benchmark("ingest", ("bench/ingest.py",), ("--seconds", "3", "--warmup", "1")),
    Benchmark("scoring", ("bench/scoring.py",), ("--events", "10000")),
    Benchmark("whatif", ("bench/whatif.py",), ("--interactions", "100000")),
    Benchmark("e2e-300", ("bench/e2e.py", "--rate", "300"), ("--seconds", "15")),
    Benchmark("e2e-1000", ("bench/e2e.py", "--rate", "1000"), ("--seconds", "15")),
    Benchmark("history", ("bench/history.py",), ("--views", "10", "--gets", "10")),
)


@dataclass
class Outcome:
    benchmark: Benchmark
    exit_code: int
    seconds: float
    figures: list[dict[str, Any]]


def run(benchmark: Benchmark, quick: bool, place: str, results: Path) -> Outcome:
    """Run one benchmark with its output shown live; its figures from `results`."""
    command = benchmark.command(quick)
    print(
        f"\n=== [{place}] {benchmark.name}: {' '.join(command[2:])} "
        f"(load average {load_average()})",
        flush=True,
    )
    results.write_text("")
    started = time.monotonic()
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, env=os.environ | {RESULTS_FILE: str(results)}
    )
    try:
        exit_code = process.wait()
    except KeyboardInterrupt:
        process.wait()  # it had the Ctrl-C too, and stops what it started, by pid
        raise
    seconds = time.monotonic() - started
    figures = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    print(f"=== {benchmark.name}: exit {exit_code} after {seconds:,.0f} s", flush=True)
    return Outcome(benchmark, exit_code, seconds, figures)


def amount(value: float, unit: str) -> str:
    return f"{value:,.0f} {unit}" if abs(value) >= 100 else f"{value:,.1f} {unit}"


def row(figure: dict[str, Any]) -> list[str]:
    goal = figure["goal"]
    ratio = figure["ratio"]
    return [
        figure["metric"],
        amount(figure["ours"], figure["unit"]),
        f"{amount(figure['reference'], figure['unit'])}: {figure['reference_is']}",
        f"{ratio:.2f}",
        "-" if goal is None else f">= {goal:g}",
        "" if goal is None else ("meets" if ratio >= goal else "below"),
    ]


def summary(outcomes: list[Outcome], quick: bool, started: float) -> str:
    rows = [row(figure) for outcome in outcomes for figure in outcome.figures]
    header = ["metric", "leadflow", "reference (what it is)", "ratio", "goal", "meets/below"]
    lines = [
        "",
        "=== make bench: every figure against its reference, measured in the same run"
        + (" (--quick: shortened runs)" if quick else ""),
        "ratio: leadflow / reference where more is better, reference / leadflow where less is "
        "better (latency): 1 = as good as the reference",
        render(header, rows) if rows else "(no figures were recorded)",
        "",
        "took: "
        + ", ".join(f"{o.benchmark.name} {o.seconds:,.0f} s" for o in outcomes)
        + f"; {time.monotonic() - started:,.0f} s in all; load average at the end "
        + load_average(),
    ]
    for outcome in outcomes:
        if outcome.exit_code != 0:
            lines.append(f"FAILED: {outcome.benchmark.name} exited {outcome.exit_code}")
        elif not outcome.figures:
            lines.append(f"NOTE: {outcome.benchmark.name} recorded no figure")
    return "\n".join(lines)


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run every benchmark; one table of ratios.")
    parser.add_argument("--quick", action="store_true", help="shorter runs, for a look")
    parser.add_argument(
        "--only",
        action="append",
        choices=[benchmark.name for benchmark in BENCHMARKS],
        help="run only this benchmark (repeatable)",
    )
    return parser.parse_args()


def main() -> None:
    args = parse_arguments()
    chosen = [b for b in BENCHMARKS if not args.only or b.name in args.only]
    started = time.monotonic()
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="leadflow-bench-results-") as directory:
        results = Path(directory) / "results.jsonl"
        for number, benchmark in enumerate(chosen, 1):
            outcomes.append(run(benchmark, args.quick, f"{number}/{len(chosen)}", results))
    print(summary(outcomes, args.quick, started))
    sys.exit(1 if any(outcome.exit_code for outcome in outcomes) else 0)


if __name__ == "__main__":
    main()
