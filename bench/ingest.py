"""Benchmark of the ingest service against references measured in the same run.

What it measures, on this machine, in one run:

1. single-event req/s: `POST /v1/events` (one valid web interaction, a distinct id and
   email each) against the real ingest service (`python -m leadflow serve ingest`, a
   subprocess) vs a bare FastAPI endpoint that answers 202 without work
   (`bench/bare_app.py`, served by uvicorn the same way: one worker, `log_config=None`,
   `access_log=False`). Throughput and p50/p99 latency at a fixed concurrency.
2. batch events/s: `POST /v1/events/batch` with 1,000 events per request, a few requests
   in flight, against the same ingest service vs a raw aiokafka producer (acks=all,
   linger_ms=5) sending the same records (the same envelopes, as JSON of the same
   length, and keys, built with `record_interaction` + `model_dump_json`) pipelined to the
   same broker: each chunk of 1,000 is sent without awaiting each delivery, then all
   deliveries are awaited.

The two throughput ratios (goals of issue 13: single >= 0.5, batch >= 0.6) are handed to
`make bench`'s summary through `bench.common.record`.

Both servers get the same requests from the same load generator: a lean asyncio client
that speaks just enough HTTP/1.1 over keep-alive connections. (An httpx.AsyncClient at
the same concurrency topped out near 500 req/s at a full core on this 2-core machine, a
tenth of what the bare server answers: it would have measured itself.) Every measurement
runs for a fixed time after a short warm-up and counts the 2xx answers that completed
inside the window. The broker is the embedded Tansu (memory storage); every process
started here is stopped by its pid at the end. Only 127.0.0.1 is used.

The load generator, the servers and the broker share the machine's cores, so absolute
numbers move from run to run; the ratios are the point. Nothing here asserts a timing.

Run from the repository root:

    .venv/bin/python bench/ingest.py [--seconds 10] [--concurrency 32]
        [--warmup 2] [--batch-concurrency 4]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import importlib.util
import itertools
import os
import platform
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: find `bench`

from bench.common import (
    REPO_ROOT,
    CpuWatch,
    as_published,
    clean_environment,
    cpu_shares,
    load_average,
    percentile,
    rate,
    record,
    render,
    run_within,
    scratch,
    send_pipelined,
    start_logged_broker,
    versus,
)
from bench.servers import (
    HttpConnection,
    Server,
    launch,
    request_head,
    request_once,
    wait_until_answering,
)
from shared.embedded import LOCALHOST, free_port, stop_process
from shared.kafka import create_topics, new_producer
from shared.settings import Settings

API_KEY = "bench-key"
BATCH_SIZE = 1_000
RAW_RECORD_POOL = 20 * BATCH_SIZE  # distinct envelopes the raw producer cycles through
LINGER_MS = 5
SINGLE_GOAL = 0.5  # issue 13: single-event ingest vs the bare endpoint
BATCH_GOAL = 0.6  # issue 13: batch ingest vs the raw producer
STARTUP_SECONDS = 30.0
DRAIN_SECONDS = 30.0  # how long in-flight requests may take to finish after a window
EVENT_TEMPLATE = (
    '{"id":"%s","channel":"web","type":"content_download",'
    '"contact":{"email":"u%d@example.com"},"properties":{"asset":"pricing.pdf"}}'
)
RUN_TAG = f"bench-{int(time.time())}"


def event_json(number: int) -> str:
    """One valid interaction with its own id and email (the same shape in every request)."""
    return EVENT_TEMPLATE % (f"{RUN_TAG}-{number}", number)


def single_body(number: int) -> bytes:
    return event_json(number).encode()


def batch_body(number: int) -> bytes:
    first = number * BATCH_SIZE
    events = ",".join(event_json(first + index) for index in range(BATCH_SIZE))
    return f'{{"events":[{events}]}}'.encode()


def post_head(port: int, path: str, length: int) -> bytes:
    return request_head("POST", port, path, {"X-API-Key": API_KEY}, length)


# --- one measurement --------------------------------------------------------------------


@dataclass
class Measurement:
    ok: int  # 2xx answers (requests) or acknowledged chunks completed inside the window
    errors: int
    seconds: float
    latencies: list[float]
    cpu: dict[str, float]
    items_per_request: int = 1
    first_error: str | None = None

    @property
    def items_per_second(self) -> float:
        return self.ok * self.items_per_request / self.seconds

    def latency_ms(self, quantile: float) -> float:
        return 1000 * percentile(self.latencies, quantile)


@dataclass
class Window:
    """The warm-up / measure / stop phases the workers of one measurement share."""

    measuring: bool = False
    stopping: bool = False
    ok: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    first_error: str | None = None

    def record(self, elapsed: float, error: str | None = None) -> None:
        if not self.measuring:
            return
        if error is None:
            self.ok += 1
            self.latencies.append(elapsed)
        else:
            self.errors += 1
            self.first_error = self.first_error or error


async def measure(
    workers: list[Callable[[Window], Coroutine[None, None, None]]],
    *,
    warmup: float,
    seconds: float,
    watch: CpuWatch,
    items_per_request: int = 1,
) -> Measurement:
    """Run the workers: warm up, count completions during `seconds`, stop, drain."""
    window = Window()
    tasks = [asyncio.create_task(worker(window)) for worker in workers]

    async def run_for(duration: float) -> None:
        done, _ = await asyncio.wait(tasks, timeout=duration, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            task.result()  # a worker only ends early by failing: raise its error

    try:
        await run_for(warmup)
        watch.start()
        started = time.perf_counter()
        window.measuring = True
        await run_for(seconds)
        window.measuring = False
        elapsed = time.perf_counter() - started
        cpu = watch.shares(elapsed)
        window.stopping = True
        async with asyncio.timeout(DRAIN_SECONDS):
            await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return Measurement(
        ok=window.ok,
        errors=window.errors,
        seconds=elapsed,
        latencies=window.latencies,
        cpu=cpu,
        items_per_request=items_per_request,
        first_error=window.first_error,
    )


async def http_load(
    port: int,
    path: str,
    make_body: Callable[[int], bytes],
    *,
    concurrency: int,
    warmup: float,
    seconds: float,
    watch: CpuWatch,
    items_per_request: int = 1,
) -> Measurement:
    """`concurrency` keep-alive connections, each posting one request after another."""
    numbers = itertools.count()
    connections = [await HttpConnection.open(port) for _ in range(concurrency)]

    def worker(connection: HttpConnection) -> Callable[[Window], Coroutine[None, None, None]]:
        async def run(window: Window) -> None:
            while not window.stopping:
                body = make_body(next(numbers))
                head = post_head(port, path, len(body))
                started = time.perf_counter()
                status, answer = await connection.request(head, body)
                elapsed = time.perf_counter() - started
                error = None if 200 <= status < 300 else f"{status} {answer[:300]!r}"
                window.record(elapsed, error)

        return run

    try:
        return await measure(
            [worker(connection) for connection in connections],
            warmup=warmup,
            seconds=seconds,
            watch=watch,
            items_per_request=items_per_request,
        )
    finally:
        await asyncio.gather(*(connection.close() for connection in connections))


def raw_records(count: int) -> list[tuple[bytes, bytes]]:
    """(value, key) pairs exactly as ingest would publish the batch route's events."""
    received_at = datetime.now(UTC)
    return [
        as_published(
            {
                "id": f"{RUN_TAG}-raw-{number}",
                "channel": "web",
                "type": "content_download",
                "contact": {"email": f"u{number}@example.com"},
                "properties": {"asset": "pricing.pdf"},
            },
            received_at,
        )
        for number in range(count)
    ]


async def producer_load(
    settings: Settings,
    records: list[tuple[bytes, bytes]],
    *,
    concurrency: int,
    warmup: float,
    seconds: float,
    watch: CpuWatch,
) -> Measurement:
    """Chunks of BATCH_SIZE records, `concurrency` chunks in flight, each sent pipelined."""
    producer = new_producer(settings, linger_ms=LINGER_MS)
    await producer.start()
    chunks = itertools.count()

    async def run(window: Window) -> None:
        while not window.stopping:
            first = next(chunks) * BATCH_SIZE % len(records)
            started = time.perf_counter()
            await send_pipelined(producer, records[first : first + BATCH_SIZE])
            window.record(time.perf_counter() - started)

    try:
        return await measure(
            [run] * concurrency,
            warmup=warmup,
            seconds=seconds,
            watch=watch,
            items_per_request=BATCH_SIZE,
        )
    finally:
        await producer.stop()


# --- the servers --------------------------------------------------------------------------


async def check_once(port: int, path: str, body: bytes) -> None:
    """One request before measuring: the benchmark must be sending what the server accepts."""
    status, answer = await request_once(port, post_head(port, path, len(body)), body, within=10)
    if status != 202:
        raise RuntimeError(f"POST {path} on port {port} answered {status}: {answer[:500]!r}")


# --- the report ---------------------------------------------------------------------------


def latencies(measurement: Measurement) -> str:
    return f"{measurement.latency_ms(0.50):,.1f} / {measurement.latency_ms(0.99):,.1f}"


def latency_ratio(ours: Measurement, reference: Measurement) -> str:
    p50 = ours.latency_ms(0.50) / reference.latency_ms(0.50)
    p99 = ours.latency_ms(0.99) / reference.latency_ms(0.99)
    return f"x{p50:.2f} / x{p99:.2f} (lower is better)"


def throughput_ratio(ours: Measurement, reference: Measurement, goal: float) -> str:
    return versus(ours.items_per_second, reference.items_per_second, goal)


def cpu(measurement: Measurement, names: tuple[str, ...]) -> str:
    return cpu_shares(measurement.cpu, names)


def report(
    args: argparse.Namespace,
    single: Measurement,
    bare: Measurement,
    batch: Measurement,
    raw: Measurement,
) -> str:
    cpu_names = ("server", "client", "broker", "other")
    rows = [
        [
            f"single-event req/s (POST /v1/events, c={args.concurrency})",
            rate(single.items_per_second, "req/s"),
            rate(bare.items_per_second, "req/s") + ": bare FastAPI endpoint, 202, no work",
            throughput_ratio(single, bare, SINGLE_GOAL),
        ],
        [
            "  latency p50 / p99 (ms)",
            latencies(single),
            latencies(bare),
            latency_ratio(single, bare),
        ],
        [
            "  CPU % of a core (server / client / broker / other)",
            cpu(single, cpu_names),
            cpu(bare, cpu_names),
            "",
        ],
        [
            f"batch events/s ({BATCH_SIZE:,}/request, {args.batch_concurrency} in flight)",
            rate(batch.items_per_second, "events/s"),
            rate(raw.items_per_second, "events/s")
            + f": raw aiokafka, acks=all, linger_ms={LINGER_MS}, same records, pipelined",
            throughput_ratio(batch, raw, BATCH_GOAL),
        ],
        [
            f"  latency per {BATCH_SIZE:,} events p50 / p99 (ms)",
            latencies(batch),
            latencies(raw),
            latency_ratio(batch, raw),
        ],
        [
            "  CPU % of a core (server / client / broker / other)",
            cpu(batch, cpu_names),
            cpu(raw, cpu_names),
            "",
        ],
    ]
    goals = f"ratio (goal >= {SINGLE_GOAL} single, >= {BATCH_GOAL} batch)"
    header = ["metric", "leadflow", "reference (what it is)", goals]
    notes = []
    for name, measurement in (
        ("single-event leadflow", single),
        ("single-event reference", bare),
        ("batch leadflow", batch),
        ("batch reference", raw),
    ):
        if measurement.errors:
            notes.append(
                f"note: {name}: {measurement.errors} non-2xx answers (not counted), "
                f"first: {measurement.first_error}"
            )
    return "\n".join([render(header, rows), *notes])


def preamble(args: argparse.Namespace) -> str:
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    uvicorn_version = importlib.metadata.version("uvicorn")
    load = load_average()
    return "\n".join(
        [
            "leadflow ingest benchmark",
            f"machine: {os.cpu_count()} CPU cores, load average {load} at start; the load "
            "generator, the servers and the broker all share these cores, so absolute numbers "
            "are noisy: compare the ratios",
            f"python {platform.python_version()}, uvicorn {uvicorn_version} (http={http}, "
            f"loop={loop}), one worker each, log_config=None, access_log=False",
            f"each measurement: {args.seconds:g} s after a {args.warmup:g} s warm-up; "
            "client: raw asyncio HTTP/1.1 keep-alive connections, the same for both servers; "
            "CPU % = share of one core during the window (client = this process, which is "
            "also the raw producer; other = the rest of the machine)",
            "",
        ]
    )


# --- the run ------------------------------------------------------------------------------


async def run_measurements(
    args: argparse.Namespace,
    settings: Settings,
    ingest: Server,
    bare: Server,
    broker_pid: int,
) -> str:
    await create_topics(settings)
    await wait_until_answering(ingest, "/healthz", STARTUP_SECONDS)
    await wait_until_answering(ingest, "/readyz", STARTUP_SECONDS)
    await wait_until_answering(bare, "/healthz", STARTUP_SECONDS)
    await check_once(ingest.port, "/v1/events", event_json(-1).encode())
    await check_once(ingest.port, "/v1/events/batch", batch_body(-1))
    await check_once(bare.port, "/v1/events", event_json(-1).encode())
    records = raw_records(RAW_RECORD_POOL)

    me = os.getpid()
    single = await http_load(
        ingest.port,
        "/v1/events",
        single_body,
        concurrency=args.concurrency,
        watch=CpuWatch({"server": ingest.process.pid, "client": me, "broker": broker_pid}),
        warmup=args.warmup,
        seconds=args.seconds,
    )
    reference = await http_load(
        bare.port,
        "/v1/events",
        single_body,
        concurrency=args.concurrency,
        watch=CpuWatch({"server": bare.process.pid, "client": me}),
        warmup=args.warmup,
        seconds=args.seconds,
    )
    batch = await http_load(
        ingest.port,
        "/v1/events/batch",
        batch_body,
        concurrency=args.batch_concurrency,
        items_per_request=BATCH_SIZE,
        watch=CpuWatch({"server": ingest.process.pid, "client": me, "broker": broker_pid}),
        warmup=args.warmup,
        seconds=args.seconds,
    )
    raw = await producer_load(
        settings,
        records,
        concurrency=args.batch_concurrency,
        watch=CpuWatch({"client": me, "broker": broker_pid}),
        warmup=args.warmup,
        seconds=args.seconds,
    )
    record_ratios(single, reference, batch, raw)
    return report(args, single, reference, batch, raw)


def record_ratios(
    single: Measurement, bare: Measurement, batch: Measurement, raw: Measurement
) -> None:
    """Hand the two throughput ratios of issue 13 to `make bench`'s summary."""
    record(
        "ingest single-event throughput (POST /v1/events)",
        single.items_per_second,
        bare.items_per_second,
        unit="req/s",
        reference_is="a bare FastAPI endpoint answering 202, same uvicorn stack",
        goal=SINGLE_GOAL,
    )
    record(
        f"ingest batch throughput ({BATCH_SIZE:,} events/request)",
        batch.items_per_second,
        raw.items_per_second,
        unit="events/s",
        reference_is=f"a raw aiokafka producer sending the same records, linger_ms={LINGER_MS}",
        goal=BATCH_GOAL,
    )


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark ingest against bare references.")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured time per run")
    parser.add_argument("--concurrency", type=int, default=32, help="single-event connections")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up before each window")
    parser.add_argument("--batch-concurrency", type=int, default=4, help="batch requests in flight")
    args = parser.parse_args()
    if args.seconds <= 0 or args.warmup < 0 or args.concurrency < 1:
        parser.error("--seconds must be > 0, --warmup >= 0, --concurrency >= 1")
    if args.batch_concurrency < 1:
        parser.error("--batch-concurrency must be >= 1")
    return args


def main() -> None:
    args = parse_arguments()
    print(preamble(args), flush=True)
    with scratch() as (stack, logs):
        broker = start_logged_broker(stack, logs)
        settings = Settings(KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap_servers)
        env = clean_environment() | {
            "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "DATABASE_URL": "postgresql+asyncpg://unused@127.0.0.1:1/x",  # ingest has no database
            "LEADFLOW_API_KEYS": f'{{"{API_KEY}":["*"]}}',
            "LEADFLOW_LOG_LEVEL": "WARNING",
            "LEADFLOW_HTTP_HOST": LOCALHOST,
        }
        ingest_port = free_port()
        ingest = launch(
            "ingest",
            [sys.executable, "-m", "leadflow", "serve", "ingest"],
            env | {"LEADFLOW_INGEST_PORT": str(ingest_port)},
            ingest_port,
            logs,
        )
        stack.callback(stop_process, ingest.process)
        bare_port = free_port()
        bare = launch(
            "bare",
            [sys.executable, str(REPO_ROOT / "bench" / "bare_app.py"), "--port", str(bare_port)],
            env,
            bare_port,
            logs,
        )
        stack.callback(stop_process, bare.process)
        budget = STARTUP_SECONDS + 4 * (args.warmup + args.seconds + DRAIN_SECONDS) + 60
        print(
            run_within(run_measurements(args, settings, ingest, bare, broker.process.pid), budget)
        )


if __name__ == "__main__":
    main()
