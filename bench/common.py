"""What the benchmarks share: CPU accounting, the report table, the embedded broker.

Not a benchmark itself; `bench/ingest.py` and `bench/scoring.py` import it. They are run
as scripts (`.venv/bin/python bench/<name>.py`), so each puts the repository root on
`sys.path` before importing `bench.common`.
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from shared.embedded import EmbeddedBroker, start_broker

REPO_ROOT = Path(__file__).resolve().parent.parent


# --- CPU accounting: how busy each process was during a window ------------------------------

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (all its threads), from /proc; None elsewhere."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def machine_busy_seconds() -> float | None:
    """CPU time the whole machine spent not idle (all cores), from /proc/stat."""
    try:
        with Path("/proc/stat").open() as stat:
            fields = [int(value) for value in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / _CLOCK_TICKS  # guest time is already in user


@dataclass
class CpuWatch:
    """Named pids whose CPU use is sampled at the start and the end of a window.

    `other` is everything else the machine did meanwhile (other processes on a shared box).
    """

    pids: dict[str, int]
    _started: dict[str, float | None] = field(default_factory=dict)

    def _sample(self) -> dict[str, float | None]:
        sample = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        sample["machine"] = machine_busy_seconds()
        return sample

    def start(self) -> None:
        self._started = self._sample()

    def shares(self, elapsed: float) -> dict[str, float]:
        """Percent of one core each process (and `other`) used since `start`."""
        ended = self._sample()
        shares: dict[str, float] = {}
        for name, after in ended.items():
            before = self._started.get(name)
            if before is not None and after is not None:
                shares[name] = 100 * (after - before) / elapsed
        if "machine" in shares:
            ours = sum(share for name, share in shares.items() if name != "machine")
            shares["other"] = max(0.0, shares.pop("machine") - ours)
        return shares


# --- the report ---------------------------------------------------------------------------


def rate(value: float, unit: str) -> str:
    return f"{value:,.0f} {unit}"


def render(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header))]

    def line(cells: list[str]) -> str:
        padded = (cell.ljust(width) for cell, width in zip(cells, widths, strict=True))
        return " | ".join(padded).rstrip()

    rule = "-+-".join("-" * width for width in widths)
    return "\n".join([line(header), rule, *(line(row) for row in rows)]).rstrip()


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


# --- processes ----------------------------------------------------------------------------


def start_logged_broker(stack: ExitStack, logs: Path) -> EmbeddedBroker:
    """The embedded broker (Tansu, memory storage) logging to `logs`/broker.log.

    `stack` stops it by its pid, and closes its log, when it unwinds.
    """
    broker_log = stack.enter_context((logs / "broker.log").open("wb"))
    broker = start_broker(log=broker_log)
    stack.callback(broker.stop)
    return broker
