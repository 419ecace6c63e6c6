"""`leadflow migrate`: each service gets its own schema and Alembic history, idempotently."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from shared.db import SERVICE_SCHEMAS, migrate

pytestmark = pytest.mark.integration

EXPECTED_HEADS = {"scoring": "scoring_0004", "router": "router_0004"}


async def test_migrate_creates_one_schema_per_service_and_can_run_twice(database_url: str) -> None:
    await asyncio.to_thread(migrate, database_url)
    await asyncio.to_thread(migrate, database_url)

    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            for schema in SERVICE_SCHEMAS.values():
                revision = await connection.scalar(
                    text(f'SELECT version_num FROM "{schema}".alembic_version')
                )
                assert revision == EXPECTED_HEADS[schema]
    finally:
        await engine.dispose()
