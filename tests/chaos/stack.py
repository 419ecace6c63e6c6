"""One stack for a chaos run: its own embedded PostgreSQL and broker, the three services as
processes (`python -m leadflow serve <name>`, as `leadflow up` starts them), a supervisor
that restarts a service that dies, and the faults the harness injects.

Everything is started on 127.0.0.1 and stopped by its pid when the stack's block ends.
The broker and PostgreSQL keep their ports across restarts, and so does each service.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from bench.servers import Server, launch, stop_all, wait_until_answering
from shared.db import create_database, migrate, wait_until_ready
from shared.embedded import (
    EmbeddedBroker,
    EmbeddedPostgres,
    free_port,
    start_broker,
    start_postgres,
    stop_process,
)
from shared.kafka import create_topics
from shared.settings import Settings
from tests.processes import service_environment

SERVICES = ("ingest", "scoring", "router")
DEFINITIONS = Path(__file__).resolve().parents[2] / "lead-definitions.yaml"
API_KEY = "chaos-all-channels"
ADMIN_KEY = "chaos-admin-key"
DATABASE = "leadflow_chaos"
STARTUP_SECONDS = 60.0
RESTART_DELAY_SECONDS = 0.5  # a supervisor notices a death and starts the service again
MAX_RESTART_BACKOFF_SECONDS = 8.0


@dataclass
class Exit:
    """A service process that ended: when (seconds on the stack's clock), how, planned or not."""

    service: str
    at: float
    status: int | None
    planned: bool


@dataclass
class Supervised:
    """One service: its port, its current process, and how often it was started."""

    name: str
    port: int
    environment: dict[str, str]
    logs: Path
    server: Server | None = None
    starts: int = 0
    planned_kill: bool = False
    backoff: float = RESTART_DELAY_SECONDS

    def start(self) -> Server:
        self.starts += 1
        self.server = launch(
            f"{self.name}-{self.starts}",
            [sys.executable, "-m", "leadflow", "serve", self.name],
            self.environment,
            self.port,
            self.logs,
        )
        return self.server

    def log_tail(self, lines: int = 15) -> str:
        return self.server.tail(lines) if self.server else "(never started)"


@dataclass
class ChaosStack:
    """The parts of one run and the faults that can be injected into them."""

    directory: Path
    settings: Settings
    broker: EmbeddedBroker
    postgres: EmbeddedPostgres
    services: dict[str, Supervised]
    broker_log: IO[bytes]
    started: float = field(default_factory=time.monotonic)
    exits: list[Exit] = field(default_factory=list)
    database_down: bool = False

    @property
    def database_url(self) -> str:
        return self.settings.require_database()

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.services[service].port}"

    def port(self, service: str) -> int:
        return self.services[service].port

    def clock(self) -> float:
        return time.monotonic() - self.started

    def engine(self) -> AsyncEngine:
        """A connection per use (no pool): the harness reads while the server comes and goes."""
        return create_async_engine(self.database_url, poolclass=NullPool)

    # --- the supervisor ---------------------------------------------------------------------

    async def supervise(self, stopping: asyncio.Event) -> None:
        """Restart every service that exits, like compose's restart policy: at once after a
        planned kill, with a growing backoff after deaths of its own (which are recorded)."""
        while not stopping.is_set():
            for service in self.services.values():
                process = service.server.process if service.server else None
                if process is None or process.poll() is None:
                    continue
                self.exits.append(
                    Exit(service.name, self.clock(), process.returncode, service.planned_kill)
                )
                delay = RESTART_DELAY_SECONDS if service.planned_kill else service.backoff
                if not service.planned_kill:
                    service.backoff = min(service.backoff * 2, MAX_RESTART_BACKOFF_SECONDS)
                service.planned_kill = False
                await asyncio.sleep(delay)
                if not stopping.is_set():
                    service.start()
            with suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), 0.1)

    # --- the faults -------------------------------------------------------------------------

    def kill(self, name: str) -> None:
        """kill -9 of a service; the supervisor starts it again."""
        service = self.services[name]
        if service.server is None or service.server.process.poll() is not None:
            return
        service.planned_kill = True
        os.kill(service.server.process.pid, signal.SIGKILL)

    async def terminate_connections(self) -> int:
        """Every session of the stack's database but ours ends (pg_terminate_backend)."""
        engine = create_async_engine(
            self.postgres.url(), poolclass=NullPool, isolation_level="AUTOCOMMIT"
        )
        try:
            async with engine.connect() as connection:
                ended = await connection.scalar(
                    text(
                        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM "
                        "pg_stat_activity WHERE datname = :name AND pid <> pg_backend_pid()) t"
                    ),
                    {"name": DATABASE},
                )
        finally:
            await engine.dispose()
        return int(ended or 0)

    def restart_broker(self) -> float:
        """The broker dies (kill -9: a graceful stop lingers ~5 s while clients are connected)
        and comes back empty on the same port; answer how long it was away. No topic is
        created here: healing is the services' job."""
        started = time.monotonic()
        stop_process(self.broker.process, signal.SIGKILL)
        self.broker = start_broker(self.broker.port, log=self.broker_log)
        return time.monotonic() - started

    def stop_database(self) -> None:
        self.database_down = True
        self.postgres.stop()

    async def start_database(self) -> None:
        self.postgres = await asyncio.to_thread(
            start_postgres, self.postgres.data_dir, self.postgres.port
        )
        await wait_until_ready(self.postgres.url())
        self.database_down = False

    def stop(self) -> None:
        """Every process of the stack, by its pid (the services first)."""
        stop_all([s.server.process for s in self.services.values() if s.server is not None])
        self.broker.stop()
        if self.postgres.process.poll() is None:
            self.postgres.stop()


async def _ready(stack: ChaosStack) -> None:
    await asyncio.gather(
        *(
            wait_until_answering(service.server, "/readyz", STARTUP_SECONDS)
            for service in stack.services.values()
            if service.server is not None
        )
    )


@asynccontextmanager
async def running_stack(directory: Path) -> AsyncIterator[ChaosStack]:
    """Start PostgreSQL, the broker (topics created as `leadflow up` does) and the three
    services, supervised; stop all of them, by pid, when the block ends."""
    logs = directory / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with (logs / "broker.log").open("ab") as broker_log:
        postgres = await asyncio.to_thread(start_postgres, directory / "postgres")
        try:
            broker = start_broker(log=broker_log)
        except BaseException:
            postgres.stop()
            raise
        settings = Settings(
            KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap_servers,
            DATABASE_URL=postgres.url(DATABASE),
            LEADFLOW_API_KEYS={API_KEY: ["*"]},
            LEADFLOW_ADMIN_KEY=ADMIN_KEY,
            LEADFLOW_DEFINITIONS=DEFINITIONS,
        )
        services = {}
        for name in SERVICES:
            port = free_port()
            environment = service_environment(
                settings, **{f"LEADFLOW_{name.upper()}_PORT": str(port)}
            )
            services[name] = Supervised(name, port, environment, logs)
        stack = ChaosStack(directory, settings, broker, postgres, services, broker_log)
        stopping = asyncio.Event()
        supervisor: asyncio.Task[None] | None = None
        try:  # from here on, stack.stop() stops whatever broker and PostgreSQL are current
            await wait_until_ready(postgres.url())
            await create_database(postgres.url(), DATABASE)
            await asyncio.to_thread(migrate, stack.database_url)
            await create_topics(settings)
            for service in services.values():
                service.start()
            await _ready(stack)
            supervisor = asyncio.create_task(stack.supervise(stopping), name="supervisor")
            yield stack
        finally:
            stopping.set()
            if supervisor is not None:
                await supervisor
            stack.stop()
