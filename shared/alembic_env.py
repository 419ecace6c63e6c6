"""The Alembic environment every service's `migrations/env.py` delegates to."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine


def _run(connection: Connection, schema: str) -> None:
    connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    context.configure(
        connection=connection,
        version_table_schema=schema,
        include_schemas=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(url: str, schema: str) -> None:
    engine = create_async_engine(url, pool_size=1)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_run, schema)
    finally:
        await engine.dispose()


def run_migrations() -> None:
    config = context.config
    url = config.get_main_option("sqlalchemy.url")
    assert url is not None
    asyncio.run(_run_async(url, config.attributes["schema"]))
