"""The routing fairness report's reads: the roster, and what became of each hand-off a rep
received in a period.

A rep *holds* a lead from a hand-off to them (`assigned`, `reassigned`) until the lead's
next move in the hand-off log (`assigned`, `reassigned`, `queued`). Every figure of a rep
is about the hand-offs they received in the period, followed to whatever happened in
that hold, even after the period:

- accepted: the rep accepted the lead while holding it (minutes from hand-off to accept);
- reassigned away: the hold ended with the lead taken from them (`reassigned` or `queued`
  naming them as its previous rep: a missed SLA, or the rep deactivated);
- SLA breach: the router acted on a missed deadline: it escalated the lead in the hold, or
  took the unaccepted lead away at or after the hand-off's SLA deadline.

Times are the router's own (`occurred_at` of the event, by the clock that set its SLA
deadline); a row without one counts at its `created_at`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.router.domain.fairness import ACCOUNT_OWNER_REASON, Member
from services.router.tables import handoff_log, reps

# When a logged event happened, by the router's clock.
_AT = "coalesce((envelope #>> '{data,occurred_at}')::timestamptz, created_at)"
_FIGURES = """
WITH received AS (
    SELECT DISTINCT lead_id FROM {handoff_log}
    WHERE kind IN ('assigned', 'reassigned') AND {at} >= :start AND {at} < :end
), numbered AS (
    -- Each move of a lead opens a hold; the events after it until the next move are in it.
    SELECT seq, lead_id, rep_id::text AS rep_id, kind, {at} AS at,
           envelope #>> '{{data,previous_rep_id}}' AS previous_rep_id,
           envelope #>> '{{data,reason}}' AS reason,
           (envelope #>> '{{data,sla_deadline}}')::timestamptz AS deadline,
           count(*) FILTER (WHERE kind IN ('assigned', 'reassigned', 'queued'))
               OVER (PARTITION BY lead_id ORDER BY seq) AS hold
    FROM {handoff_log} WHERE lead_id IN (SELECT lead_id FROM received)
), in_hold AS (
    -- What the rep holding the lead did in the hold, or the router did to them.
    SELECT numbered.*,
           min(at) FILTER (WHERE kind = 'accepted') OVER this_hold AS accepted_at,
           bool_or(kind = 'escalated') OVER this_hold AS escalated
    FROM numbered
    WINDOW this_hold AS (PARTITION BY lead_id, hold)
), held AS (
    -- A hold from the move that opened it, and what the lead's next move did to it.
    SELECT rep_id, kind, at, reason, deadline, accepted_at, escalated,
           lead(kind) OVER next_move IN ('reassigned', 'queued')
               AND lead(previous_rep_id) OVER next_move = rep_id AS taken_away,
           lead(at) OVER next_move AS ended_at
    FROM in_hold WHERE kind IN ('assigned', 'reassigned', 'queued')
    WINDOW next_move AS (PARTITION BY lead_id ORDER BY seq)
)
SELECT rep_id, count(*) AS received,
       count(*) FILTER (WHERE starts_with(coalesce(reason, ''), :owner_reason))
           AS as_account_owner,
       count(accepted_at) AS accepted,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM accepted_at - at) / 60)
           AS median_minutes_to_accept,
       count(*) FILTER (WHERE taken_away) AS reassigned_away,
       count(*) FILTER (
           WHERE escalated
              OR (taken_away AND accepted_at IS NULL AND ended_at >= deadline)
       ) AS sla_breaches
FROM held
WHERE kind IN ('assigned', 'reassigned') AND rep_id IS NOT NULL
  AND at >= :start AND at < :end
GROUP BY rep_id
"""


@dataclass(frozen=True)
class HandOffFigures:
    """What became of the hand-offs one rep received in a period."""

    rep_id: str
    received: int
    as_account_owner: int
    accepted: int
    median_minutes_to_accept: float | None
    reassigned_away: int
    sla_breaches: int


async def roster(connection: AsyncConnection) -> list[Member]:
    """Every rep, active or not, with what the split weighs them by."""
    rows = await connection.execute(
        select(
            reps.c.id,
            reps.c.name,
            reps.c.team,
            reps.c.weight,
            reps.c.capacity,
            reps.c.active,
            reps.c.created_at,
        )
    )
    return [
        Member(
            rep_id=row.id,
            name=row.name,
            team=row.team,
            weight=row.weight,
            capacity=row.capacity,
            active=row.active,
            joined_at=row.created_at,
        )
        for row in rows
    ]


async def hand_off_figures(
    connection: AsyncConnection, start: datetime, end: datetime
) -> list[HandOffFigures]:
    """Per rep who received a hand-off in [start, end): what became of those hand-offs."""
    statement = text(_FIGURES.format(handoff_log=handoff_log.fullname, at=_AT))
    rows = await connection.execute(
        statement, {"start": start, "end": end, "owner_reason": ACCOUNT_OWNER_REASON}
    )
    return [
        HandOffFigures(
            rep_id=row.rep_id,
            received=row.received,
            as_account_owner=row.as_account_owner,
            accepted=row.accepted,
            median_minutes_to_accept=(
                None
                if row.median_minutes_to_accept is None
                else float(row.median_minutes_to_accept)
            ),
            reassigned_away=row.reassigned_away,
            sla_breaches=row.sla_breaches,
        )
        for row in rows
    ]
