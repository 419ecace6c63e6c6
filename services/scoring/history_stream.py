"""Every stored history of a slice of lead ids, streamed for replays (what-if)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncEngine

from services.scoring.domain import StoredInteraction
from services.scoring.repository import HISTORY_COLUMNS, stored_interaction
from services.scoring.tables import interactions

STREAM_CHUNK = 20_000
# Every history of a range of lead ids, one lead after another: streamed by the raw driver,
# the fastest way through all of them.
HISTORY_QUERY = (
    f"SELECT {HISTORY_COLUMNS} FROM {interactions.fullname} "  # noqa: S608 - only constant names
    "WHERE lead_id >= $1 AND lead_id <= $2 ORDER BY lead_id"
)


async def lead_histories(
    engine: AsyncEngine, lead_slice: tuple[str, str]
) -> AsyncIterator[list[StoredInteraction]]:
    """The stored interactions of every lead in a slice of ids, one lead at a time."""
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        async with driver.transaction():
            current: str | None = None
            history: list[StoredInteraction] = []
            async for row in driver.cursor(HISTORY_QUERY, *lead_slice, prefetch=STREAM_CHUNK):
                if row[0] != current and history:
                    yield history
                    history = []
                current = row[0]
                history.append(stored_interaction(row))
            if history:
                yield history
