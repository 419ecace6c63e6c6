"""Every stored history of a slice of lead ids, streamed for replays (what-if).

Columnar: one row per lead, each field an array in event-time order. The driver decodes a
tenth of the rows it would one per interaction, the interactions are built without a
Python loop, and the engine's sort by (time, event id) finds them already in order.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from services.scoring.domain import StoredInteraction
from services.scoring.tables import interactions

STREAM_CHUNK = 1_000  # leads per round trip
# array_agg keeps the order of the sorted subquery beneath it; `COLLATE "C"` orders event
# ids of one moment as Python compares them. Profiles come as JSON text: most interactions
# carry none, so only the few that do are decoded.
HISTORY_QUERY = (
    "SELECT array_agg(event_id), array_agg(time), array_agg(channel), array_agg(type), "  # noqa: S608 - only constant names
    "array_agg(campaign), array_agg(url), array_agg(asset), array_agg(network), "
    "array_agg(profile) "
    "FROM (SELECT lead_id, event_id, date_part('epoch', event_time) AS time, channel, "
    "type, campaign, url, asset, network, profile::text AS profile "
    f"FROM {interactions.fullname} WHERE lead_id >= $1 AND lead_id <= $2 "
    'ORDER BY lead_id, event_time, event_id COLLATE "C") AS in_order '
    "GROUP BY lead_id"
)


def _history(lead: Sequence[Any]) -> list[StoredInteraction]:
    """One lead's row of HISTORY_QUERY as the scoring engine takes it."""
    *fields, profiles = lead
    decoded = [None if profile is None else json.loads(profile) for profile in profiles]
    return list(map(StoredInteraction, *fields, decoded))


async def lead_histories(
    connection: AsyncConnection, lead_slice: tuple[str, str]
) -> AsyncIterator[list[StoredInteraction]]:
    """The stored interactions of every lead in a slice of ids, one lead at a time: streamed
    by the raw driver (asyncpg), the fastest way through all of them."""
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None
    async with driver.transaction():
        async for lead in driver.cursor(HISTORY_QUERY, *lead_slice, prefetch=STREAM_CHUNK):
            yield _history(lead)
