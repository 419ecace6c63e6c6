"""Outbound messages in PostgreSQL: kept in the transaction of the event that causes them,
claimed by one router at a time, and every attempt recorded."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as upsert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.router.domain.delivery import Attempt, Verdict
from services.router.domain.notices import LeadSummary, NoticeRequest, Reason
from services.router.tables import deliveries, delivery_attempts, outbox, reps, subscriptions
from shared.topics import HANDOFFS, NURTURE, SALES_ACTIONS
from shared.unit_of_work import SqlOutbox

WEBHOOK_TOPICS = frozenset({HANDOFFS.name, NURTURE.name, SALES_ACTIONS.name})
RESPONSE_HEAD_CHARS = 256

# One delivery per subscription that wants the event's type, whether active or paused
# (a paused subscription gets what it missed when it is resumed).
_FAN_OUT = text(
    """
    INSERT INTO router.deliveries
        (dedupe_key, event_id, lead_id, channel, subscription_id, recipient, purpose, body, due_at)
    SELECT 'webhook/' || s.id || '/' || :event_id, :event_id, CAST(:lead_id AS uuid), 'webhook',
           s.id, s.url, :type, :body, now()
    FROM router.subscriptions s
    WHERE :type = ANY (s.event_types)
    ON CONFLICT (dedupe_key) DO NOTHING
    """
)

# Due messages, oldest first. A webhook waits while an earlier delivery of the same lead to
# the same subscription is pending (even one another router holds), so each receiver sees
# a lead's events in order; a paused subscription's deliveries wait for its resumption.
_CLAIM = text(
    """
    SELECT d.id, d.event_id, d.lead_id::text, d.channel, d.subscription_id::text, d.recipient,
           d.purpose, d.rep_id::text, d.body, d.attempts, d.first_tried_at
    FROM router.deliveries d
    LEFT JOIN router.subscriptions s ON s.id = d.subscription_id
    WHERE d.status = 'pending' AND d.due_at <= :now
      AND (d.subscription_id IS NULL OR (
            s.status = 'active'
            AND NOT EXISTS (
                SELECT 1 FROM router.deliveries e
                WHERE e.subscription_id = d.subscription_id AND e.lead_id = d.lead_id
                  AND e.status = 'pending' AND e.id < d.id)))
    ORDER BY d.due_at, d.id
    LIMIT :limit
    FOR UPDATE OF d SKIP LOCKED
    """
)


class RouterOutbox(SqlOutbox):
    """The router's outbox: each hand-off, nurture and sales-action event is also kept for
    every webhook subscription that wants it. Rows are written when the transaction commits
    (`flush`), those of every event of the transaction together."""

    def __init__(self, connection: AsyncConnection) -> None:
        super().__init__(connection, outbox)
        self._connection = connection
        self._rows: list[dict[str, Any]] = []

    async def add(self, rows: Sequence[dict[str, Any]]) -> None:
        self._rows.extend(rows)

    async def flush(self) -> None:
        rows, self._rows = self._rows, []
        await super().add(rows)
        wanted = []
        for row in rows:
            if row["topic"] in WEBHOOK_TOPICS:
                body = row["value"].decode()
                event = json.loads(body)
                wanted.append(
                    {
                        "event_id": row["event_id"],
                        "lead_id": event["subject"],
                        "type": event["type"],
                        "body": body,
                    }
                )
        if wanted:
            await self._connection.execute(_FAN_OUT, wanted)


class SqlNotices:
    """Notices are kept when the transaction commits (`flush`), all in one statement."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection
        self._requests: list[NoticeRequest] = []

    async def plan(self, requests: Sequence[NoticeRequest]) -> None:
        self._requests.extend(requests)

    async def flush(self) -> None:
        """Keep the planned notices to be sent when due; one already kept is kept once. A
        rep without an address for the channel is not notified on it."""
        requests, self._requests = self._requests, []
        rep_ids = {r.rep_id for r in requests if r.rep_id}
        addresses: dict[tuple[str, str], str | None] = {}
        if rep_ids:
            rows = await self._connection.execute(
                select(reps.c.id, reps.c.email, reps.c.chat_webhook_url).where(
                    reps.c.id.in_(rep_ids)
                )
            )
            for row in rows:
                addresses[(row.id, "email")] = row.email
                addresses[(row.id, "chat")] = row.chat_webhook_url
        values = []
        for request in requests:
            recipient = (
                addresses.get((request.rep_id, request.channel))
                if request.rep_id
                else request.address
            )
            if recipient:
                values.append(
                    {
                        "dedupe_key": request.dedupe_key,
                        "event_id": request.event_id,
                        "lead_id": request.lead_id,
                        "channel": request.channel,
                        "recipient": recipient,
                        "purpose": request.purpose,
                        "rep_id": request.rep_id,
                        "due_at": request.due_at,
                    }
                )
        if values:
            await self._connection.execute(
                upsert(deliveries).on_conflict_do_nothing(index_elements=["dedupe_key"]), values
            )


@dataclass(frozen=True)
class Claimed:
    id: int
    event_id: str
    lead_id: str
    channel: str
    subscription_id: str | None
    recipient: str
    purpose: str
    rep_id: str | None
    body: str | None
    attempts: int
    first_tried_at: datetime | None


async def claim_due(connection: AsyncConnection, now: datetime, limit: int) -> list[Claimed]:
    rows = await connection.execute(_CLAIM, {"now": now, "limit": limit})
    return [Claimed(**row._asdict()) for row in rows]


async def record(
    connection: AsyncConnection,
    claimed: Claimed,
    attempt: Attempt,
    verdict: Verdict,
    *,
    at: datetime,
    latency_ms: float,
) -> None:
    """Keep the attempt and what follows from it."""
    number = claimed.attempts + 1
    await connection.execute(
        insert(delivery_attempts).values(
            delivery_id=claimed.id,
            number=number,
            at=at,
            status_code=attempt.status,
            latency_ms=latency_ms,
            response_head=(attempt.response_head or "")[:RESPONSE_HEAD_CHARS] or None,
            error=attempt.error,
        )
    )
    finished = verdict.outcome != "retry"
    await connection.execute(
        update(deliveries)
        .where(deliveries.c.id == claimed.id)
        .values(
            attempts=number,
            first_tried_at=claimed.first_tried_at or at,
            status="pending" if not finished else verdict.outcome,
            due_at=verdict.retry_at or at,
            finished_at=at if finished else None,
            last_error=None if verdict.outcome == "delivered" else (verdict.why or attempt.error),
        )
    )


async def skip(connection: AsyncConnection, claimed: Claimed, why: str, at: datetime) -> None:
    """A notice that no longer applies (a reminder for a lead already accepted)."""
    await connection.execute(
        update(deliveries)
        .where(deliveries.c.id == claimed.id)
        .values(status="skipped", finished_at=at, last_error=why)
    )


async def purge_finished(connection: AsyncConnection, before: datetime) -> None:
    await connection.execute(
        delete(deliveries).where(
            deliveries.c.status != "pending", deliveries.c.finished_at < before
        )
    )


async def set_failing_since(
    connection: AsyncConnection, subscription_id: str, since: datetime | None
) -> None:
    await connection.execute(
        update(subscriptions)
        .where(subscriptions.c.id == subscription_id)
        .values(failing_since=since)
    )


async def pause(connection: AsyncConnection, subscription_id: str, why: str) -> None:
    await connection.execute(
        update(subscriptions)
        .where(subscriptions.c.id == subscription_id)
        .values(status="paused", paused_reason=why)
    )


def lead_summary(lead: Row[Any]) -> LeadSummary:
    """A row of router.leads as a notice describes the lead."""
    profile = lead.profile or {}
    name = " ".join(part for part in (profile.get("first_name"), profile.get("last_name")) if part)
    return LeadSummary(
        lead_id=str(lead.id),
        name=name or None,
        company=profile.get("company"),
        job_title=profile.get("job_title"),
        grade=lead.grade,
        score=lead.score,
        reasons=tuple(
            Reason(label=reason.get("label") or reason["rule"], points=reason["points"])
            for reason in lead.reasons or ()
        ),
        sla_deadline=lead.sla_deadline,
    )
