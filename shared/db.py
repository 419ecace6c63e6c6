"""PostgreSQL plumbing: async engines, readiness, per-service schema migrations."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import exc, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

SERVICES_DIR = Path(__file__).resolve().parent.parent / "services"
# Each service owns one schema and keeps its own Alembic history in it.
SERVICE_SCHEMAS: dict[str, str] = {"scoring": "scoring", "router": "router"}


def new_engine(database_url: str, *, pool_size: int = 10) -> AsyncEngine:
    return create_async_engine(database_url, pool_size=pool_size, pool_pre_ping=True)


async def wait_until_ready(database_url: str, within_seconds: float = 30.0) -> None:
    """Return once the server answers a query (it listens before it accepts sessions)."""
    engine = create_async_engine(database_url, pool_size=1)
    deadline = asyncio.get_running_loop().time() + within_seconds
    try:
        while True:
            try:
                async with engine.connect() as connection:
                    await connection.execute(text("SELECT 1"))
                    return
            except Exception:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.2)
    finally:
        await engine.dispose()


async def create_database(server_url: str, name: str) -> str:
    """Create database `name` on the server of `server_url` if missing; answer its URL."""
    engine = create_async_engine(server_url, isolation_level="AUTOCOMMIT", pool_size=1)
    try:
        async with engine.connect() as connection:
            exists = await connection.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            )
            if not exists:
                await connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await engine.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def alembic_config(service: str, database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SERVICES_DIR / service / "migrations"))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["schema"] = SERVICE_SCHEMAS[service]
    return config


def migrate(database_url: str) -> None:
    """Bring every service's schema to its newest revision (blocking; no event loop running)."""
    for service in SERVICE_SCHEMAS:
        command.upgrade(alembic_config(service, database_url), "head")


async def database_ready(engine: AsyncEngine) -> bool:
    """Whether the database answers a query within two seconds."""
    try:
        async with asyncio.timeout(2), engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception:
        return False
    return True


# What may say that the database is down: what SQLAlchemy and sockets raise.
DATABASE_ERRORS = (OSError, exc.DBAPIError, exc.TimeoutError)
# SQLSTATEs of a server that is unreachable, shutting down, starting up, or full.
_OUTAGE_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53300")


def _says_outage(cause: BaseException) -> bool:
    if isinstance(cause, OSError | exc.TimeoutError):  # refused, reset, timed out; pool empty
        return True
    if isinstance(cause, exc.DBAPIError) and cause.connection_invalidated:
        return True
    sqlstate = getattr(cause, "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate.startswith(_OUTAGE_SQLSTATES)


def _causes(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)  # what the driver raised, under SQLAlchemy's error
        current = orig if isinstance(orig, BaseException) else current.__cause__


def is_database_outage(error: BaseException) -> bool:
    """Whether `error` says the database cannot be reached now (not that a statement is wrong)."""
    return any(_says_outage(cause) for cause in _causes(error))
