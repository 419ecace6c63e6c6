"""What the benchmarks share: CPU accounting, the report table, the scaffolding of a run,
the embedded broker, PostgreSQL and a fresh database, records as ingest publishes them.

Not a benchmark itself; `bench/ingest.py`, `bench/scoring.py`, `bench/e2e.py` and
`bench/whatif.py` import it (and `bench/servers.py`: the servers and the HTTP client).
They are run as scripts (`.venv/bin/python bench/<name>.py`), so each puts the repository
root on `sys.path` before importing `bench.common`.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator, Sequence
from contextlib import ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from aiokafka import AIOKafkaProducer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from services.ingest.domain import Rejected, parse_interaction, record_interaction
from shared.db import create_database, migrate, wait_until_ready
from shared.embedded import LOCALHOST, EmbeddedBroker, start_broker, start_postgres
from shared.events import Interaction
from shared.topics import INTERACTIONS

T = TypeVar("T")

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


def cpu_shares(shares: dict[str, float], names: Sequence[str]) -> str:
    """`shares` (from `CpuWatch.shares`) of `names`, in that order: "12 / 80 / -"."""
    return " / ".join(f"{shares[name]:.0f}" if name in shares else "-" for name in names)


def versus(ours: float, theirs: float, goal: float) -> str:
    """The ratio ours / theirs and whether it meets `goal`."""
    ratio = ours / theirs
    return f"{ratio:.2f} ({'meets' if ratio >= goal else 'below'} goal)"


# Set by `bench/run_all.py` (`make bench`): each benchmark appends its results there as JSON
# lines, and the runner prints them as one table.
RESULTS_FILE = "LEADFLOW_BENCH_RESULTS"


def record(
    metric: str,
    ours: float,
    reference: float,
    *,
    unit: str,
    reference_is: str,
    goal: float | None = None,
    higher_is_better: bool = True,
) -> None:
    """Hand one measured figure and its reference to `make bench`'s summary table.

    The ratio is ours / reference when more is better (throughput), else reference / ours
    (latency, time taken), so a ratio of 1 always means "as good as the reference".
    """
    path = os.environ.get(RESULTS_FILE)
    if not path:
        return
    ratio = ours / reference if higher_is_better else reference / ours
    line = {
        "metric": metric,
        "ours": ours,
        "reference": reference,
        "unit": unit,
        "reference_is": reference_is,
        "ratio": ratio,
        "goal": goal,
    }
    with open(path, "a", encoding="utf-8") as results:
        results.write(json.dumps(line) + "\n")


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def percentile(values: list[float], quantile: float) -> float:
    """The percentile (quantile in 0..1) of `values` as PostgreSQL's `percentile_cont` gives
    it, so benchmarks and the router's reports agree: linear interpolation between the two
    nearest ranks (`statistics.quantiles(method="inclusive")`); NaN when there are none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = quantile * (len(ordered) - 1)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


# --- the run ------------------------------------------------------------------------------


@contextmanager
def scratch() -> Iterator[tuple[ExitStack, Path]]:
    """A temporary directory (logs, an embedded server's data) and a stack of what to stop.

    The stack unwinds (stopping what was started) before the directory is removed.
    """
    with tempfile.TemporaryDirectory(prefix="leadflow-bench-") as directory, ExitStack() as stack:
        yield stack, Path(directory)


def run_within(coroutine: Coroutine[Any, Any, T], seconds: float) -> T:
    """Run `coroutine` in a new event loop; fail if it takes longer than `seconds`."""
    return asyncio.run(asyncio.wait_for(coroutine, seconds))


def start_logged_broker(stack: ExitStack, logs: Path) -> EmbeddedBroker:
    """The embedded broker (Tansu, memory storage) logging to `logs`/broker.log.

    `stack` stops it by its pid, and closes its log, when it unwinds.
    """
    broker_log = stack.enter_context((logs / "broker.log").open("wb"))
    broker = start_broker(log=broker_log)
    stack.callback(broker.stop)
    return broker


def clean_environment() -> dict[str, str]:
    """This process's environment without any leadflow setting that could change a server."""
    prefixes = ("LEADFLOW_", "KAFKA_", "DATABASE_URL")
    return {key: value for key, value in os.environ.items() if not key.startswith(prefixes)}


# --- PostgreSQL ---------------------------------------------------------------------------

LOCAL_POSTGRES = f"postgresql+asyncpg://postgres@{LOCALHOST}:5432/test"


def local_postgres_listening() -> bool:
    try:
        with socket.create_connection((LOCALHOST, 5432), timeout=1):
            return True
    except OSError:
        return False


def postgres_server(stack: ExitStack, directory: Path) -> tuple[str, str]:
    """A server URL and what it is: DATABASE_URL, else 127.0.0.1:5432, else embedded.

    An embedded server is started in `directory` and stopped by its pid when `stack` unwinds.
    """
    configured = os.environ.get("DATABASE_URL")
    if configured:
        return configured, "the server of DATABASE_URL"
    if local_postgres_listening():
        return LOCAL_POSTGRES, f"local server at {LOCALHOST}:5432"
    server = start_postgres(directory / "postgres")
    stack.callback(server.stop)
    return server.url(), f"embedded PostgreSQL (pid {server.process.pid})"


async def drop_database(server_url: str, name: str) -> None:
    engine = create_async_engine(server_url, isolation_level="AUTOCOMMIT", pool_size=1)
    try:
        async with engine.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await engine.dispose()


@asynccontextmanager
async def fresh_database(server_url: str, prefix: str) -> AsyncIterator[str]:
    """The URL of a new database `<prefix>_<random>`, migrated; dropped on the way out."""
    await wait_until_ready(server_url)
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    database_url = await create_database(server_url, name)
    try:
        await asyncio.to_thread(migrate, database_url)
        yield database_url
    finally:
        await drop_database(server_url, name)


# --- records as ingest publishes them --------------------------------------------------------


def accepted(raw: dict[str, Any]) -> Interaction:
    """`raw` as ingest parses it; the benchmark must send what ingest accepts."""
    interaction = parse_interaction(raw)
    if isinstance(interaction, Rejected):
        raise RuntimeError(f"the benchmark's own event is invalid: {interaction.errors}")
    return interaction


def as_published(raw: dict[str, Any], received_at: datetime) -> tuple[bytes, bytes]:
    """(value, key) of `raw` exactly as ingest's batch route would publish it."""
    event = record_interaction(
        accepted(raw), source="/ingest/events/batch", received_at=received_at
    )
    return event.model_dump_json().encode(), event.subject.encode()


async def send_pipelined(
    producer: AIOKafkaProducer, records: Sequence[tuple[bytes, bytes]]
) -> None:
    """Send every (value, key) to `lead.interactions` without awaiting each; await them all."""
    deliveries = [await producer.send(INTERACTIONS.name, value, key=key) for value, key in records]
    await asyncio.gather(*deliveries)
