"""What the benchmarks share: CPU accounting, the report table, the embedded broker,
PostgreSQL for a run, a lean HTTP client.

Not a benchmark itself; `bench/ingest.py`, `bench/scoring.py` and `bench/e2e.py` import it.
They are run as scripts (`.venv/bin/python bench/<name>.py`), so each puts the repository
root on `sys.path` before importing `bench.common`.
"""

from __future__ import annotations

import asyncio
import math
import os
import socket
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from shared.embedded import LOCALHOST, EmbeddedBroker, start_broker, start_postgres

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


def percentile(values: list[float], quantile: float) -> float:
    """The nearest-rank percentile (quantile in 0..1) of `values`; NaN when there are none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(quantile * len(ordered))))
    return ordered[rank - 1]


# --- processes ----------------------------------------------------------------------------


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


# --- a lean HTTP/1.1 client ----------------------------------------------------------------


class HttpConnection:
    """One keep-alive HTTP/1.1 connection to 127.0.0.1; parses only status and Content-Length.

    An httpx.AsyncClient costs a large share of a core at a thousand requests a second,
    which a load generator sharing the machine with the servers cannot afford.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, port: int) -> HttpConnection:
        reader, writer = await asyncio.open_connection(LOCALHOST, port, limit=1 << 20)
        return cls(reader, writer)

    async def request(self, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
        self._writer.write(head + body)
        header = await self._reader.readuntil(b"\r\n\r\n")
        status = int(header[9:12])
        lowered = header.lower()
        start = lowered.find(b"\r\ncontent-length:")
        if start < 0:
            if b"\r\ntransfer-encoding:" in lowered:
                raise RuntimeError("chunked responses are not supported by this client")
            return status, b""
        start += len(b"\r\ncontent-length:")
        length = int(lowered[start : lowered.index(b"\r\n", start)])
        return status, await self._reader.readexactly(length)

    async def close(self) -> None:
        self._writer.close()
        with suppress(OSError):
            await self._writer.wait_closed()


def request_head(
    method: str, port: int, path: str, headers: dict[str, str] | None = None, length: int = 0
) -> bytes:
    """The request line and headers of a request with a JSON body of `length` bytes."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {LOCALHOST}:{port}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if method in {"POST", "PUT", "PATCH"}:
        lines += ["Content-Type: application/json", f"Content-Length: {length}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()
