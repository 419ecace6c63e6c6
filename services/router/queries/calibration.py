"""The calibration report's read: every lead handed off in a period, as it was handed off
(the router keeps its latest hand-off), with every action sales took on it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.router.domain.calibration import HandOffOutcome
from services.router.tables import leads, sales_actions

_OUTCOMES = """
SELECT l.id::text AS lead_id, l.definitions_version, l.grade, l.score,
       coalesce(l.profile -> 'campaigns', '[]') AS campaigns,
       l.profile ->> 'source_channel' AS source_channel,
       ARRAY(SELECT reason ->> 'rule' FROM jsonb_array_elements(l.reasons) AS reason)
           AS rules,
       coalesce(bool_or(s.action = 'accept'), false) AS accepted,
       (array_agg(coalesce(s.details ->> 'reason', '(none)') ORDER BY s.created_at DESC)
           FILTER (WHERE s.action = 'reject'))[1] AS return_reason,
       coalesce(bool_or(s.action = 'convert'), false) AS converted,
       coalesce(bool_or(s.action = 'won'), false) AS won
FROM {leads} AS l LEFT JOIN {sales_actions} AS s ON s.lead_id = l.id
WHERE l.handed_off_at >= :start AND l.handed_off_at < :end
GROUP BY l.id
ORDER BY l.handed_off_at, l.id
"""


async def hand_off_outcomes(
    connection: AsyncConnection, start: datetime, end: datetime
) -> list[HandOffOutcome]:
    """Each lead handed off in [start, end), and what sales did with it."""
    statement = text(_OUTCOMES.format(leads=leads.fullname, sales_actions=sales_actions.fullname))
    rows = await connection.execute(statement, {"start": start, "end": end})
    return [
        HandOffOutcome(
            lead_id=row.lead_id,
            definitions_version=row.definitions_version,
            campaigns=tuple(row.campaigns),
            source_channel=row.source_channel,
            grade=row.grade,
            score=row.score,
            rules=tuple(row.rules),
            accepted=row.accepted,
            return_reason=row.return_reason,
            converted=row.converted,
            won=row.won,
        )
        for row in rows
    ]
