"""Sends what is due: claims messages, writes the notices, tries each once, records it.

Runs beside routing, never in it: a receiver that is slow or down delays only its own
messages. Claimed rows stay locked until their attempts are recorded, so several routers
never send the same message at once; one that dies mid-send leaves it to be sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.router import metrics
from services.router.domain.delivery import Attempt, RetryPolicy, judge, should_pause
from services.router.domain.links import OneClick, sign
from services.router.domain.notices import (
    Links,
    Notice,
    Purpose,
    compose,
)
from services.router.outbound.senders import HttpPoster, Mailer, webhook_headers
from services.router.outbound.store import (
    Claimed,
    claim_due,
    lead_summary,
    pause,
    purge_finished,
    record,
    set_failing_since,
    skip,
)
from services.router.tables import leads, reps, subscriptions

log = logging.getLogger(__name__)

# Not woken by every commit of routing: on a busy router that would cost a claim query
# per hand-off, on the hand-off's path; a notice or a webhook may wait this long.
IDLE_POLL_SECONDS = 0.25
# Finished messages (and their attempts) are kept this long for the deliveries API.
KEEP_FINISHED = timedelta(days=30)
PURGE_EVERY_ROUNDS = 10_000
# Without an SLA deadline, a one-click link is good for this long.
LINK_LIFETIME = timedelta(days=3)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class NoticeWriter:
    """Writes a notice from the lead and the rep as they are when it is sent."""

    public_url: str
    link_secret: bytes | None

    async def write(
        self, connection: AsyncConnection, claimed: list[Claimed], now: datetime
    ) -> dict[int, Notice | str]:
        """Each claimed notice's words, or why it is no longer sent."""
        lead_rows = {
            str(row.id): row
            for row in await connection.execute(
                select(leads).where(leads.c.id.in_({c.lead_id for c in claimed}))
            )
        }
        rep_ids = {c.rep_id for c in claimed} | {row.rep_id for row in lead_rows.values()}
        rep_rows = {
            str(row.id): row
            for row in await connection.execute(
                select(reps.c.id, reps.c.name, reps.c.timezone).where(
                    reps.c.id.in_({r for r in rep_ids if r})
                )
            )
        }
        written: dict[int, Notice | str] = {}
        for message in claimed:
            lead = lead_rows.get(message.lead_id)
            if lead is None:
                written[message.id] = "the lead is gone"
                continue
            if message.purpose == "reminder" and (
                lead.status != "assigned" or str(lead.rep_id) != message.rep_id
            ):
                written[message.id] = "the lead was accepted or moved on before the reminder"
                continue
            assignee = rep_rows.get(str(lead.rep_id)) if lead.rep_id else None
            addressed = rep_rows.get(message.rep_id or "")
            # Times are written in the zone of the rep the lead belongs to.
            rep = addressed or assignee
            zone = rep.timezone if rep is not None else "UTC"
            written[message.id] = compose(
                _purpose(message.purpose),
                lead_summary(lead),
                recipient_zone=zone,
                links=self._links(lead, message.rep_id, now),
                assignee=assignee.name if assignee and not addressed else None,
            )
        return written

    def _links(self, lead: Row[Any], rep_id: str | None, now: datetime) -> Links:
        lead_id = str(lead.id)
        page = f"{self.public_url}/#lead-{lead_id}"
        if rep_id is None or self.link_secret is None:
            return Links(lead=page)
        deadline = lead.sla_deadline
        expires = deadline if deadline and deadline > now else now + LINK_LIFETIME
        accept, reject = (
            f"{self.public_url}/v1/one-click/"
            + sign(self.link_secret, OneClick(lead_id, rep_id, action, expires))
            for action in ("accept", "reject")
        )
        return Links(lead=page, accept=accept, reject=reject)


def _purpose(value: str) -> Purpose:
    assert value in ("assigned", "reassigned", "reminder", "escalated"), value
    return value  # type: ignore[return-value]


@dataclass
class Dispatcher:
    engine: AsyncEngine
    poster: HttpPoster
    mailer: Mailer | None
    writer: NoticeWriter
    policy: RetryPolicy
    pause_after: timedelta
    clock: Callable[[], datetime] = _now
    batch: int = 50
    rng: random.Random = field(default_factory=random.Random)
    _wakeup: asyncio.Event = field(default_factory=asyncio.Event, init=False)

    async def dispatch_due(self) -> int:
        """Try every message due now (a batch of them); answer how many were tried."""
        async with self.engine.begin() as connection:
            now = self.clock()
            claimed = await claim_due(connection, now, self.batch)
            if not claimed:
                return 0
            notices = await self.writer.write(
                connection, [c for c in claimed if c.channel != "webhook"], now
            )
            receiving = await _subscriptions_of(connection, claimed, now)
            tried = await asyncio.gather(
                *(self._try(message, notices, receiving, now) for message in claimed)
            )
            answered: dict[str, bool] = {}  # subscription -> did any of its deliveries succeed
            for message, outcome in zip(claimed, tried, strict=True):
                if isinstance(outcome, str):
                    await skip(connection, message, outcome, now)
                    continue
                attempt, latency_ms = outcome
                await self._keep(connection, message, attempt, latency_ms, now)
                if message.subscription_id is not None:
                    succeeded = answered.get(message.subscription_id, False)
                    answered[message.subscription_id] = succeeded or attempt.succeeded
            await self._note_health(connection, receiving, answered, now)
        return len(claimed)

    async def _note_health(
        self,
        connection: AsyncConnection,
        receiving: dict[str, Receiving],
        answered: dict[str, bool],
        now: datetime,
    ) -> None:
        """A subscription is failing from its first failure until a delivery succeeds; one
        failing for `pause_after` is paused. Written only when that changes."""
        for subscription_id, succeeded in answered.items():
            failing_since = receiving[subscription_id].failing_since
            if succeeded:
                if failing_since is not None:
                    await set_failing_since(connection, subscription_id, None)
                continue
            if failing_since is None:
                failing_since = now
                await set_failing_since(connection, subscription_id, now)
            if should_pause(failing_since, now, self.pause_after):
                await pause(connection, subscription_id, f"failing since {failing_since}")
                log.warning("subscription paused", extra={"subscription": subscription_id})

    async def _try(
        self,
        message: Claimed,
        notices: dict[int, Notice | str],
        receiving: dict[str, Receiving],
        now: datetime,
    ) -> tuple[Attempt, float] | str:
        started = time.perf_counter()
        try:
            if message.channel == "webhook":
                body = message.body or ""
                signing = receiving[message.subscription_id or ""].secrets
                headers = webhook_headers(signing, message.event_id, now, body)
                attempt = await self.poster.post(message.recipient, body.encode(), headers)
            else:
                notice = notices[message.id]
                if isinstance(notice, str):
                    return notice
                attempt = await self._notify(message, notice, now)
        except Exception as error:
            # A message that cannot even be tried must not stop the others, ever again.
            log.exception("outbound message could not be tried", extra={"delivery": message.id})
            attempt = Attempt(status=None, error=type(error).__name__, permanent=True)
        return attempt, (time.perf_counter() - started) * 1000

    async def _notify(self, message: Claimed, notice: Notice, now: datetime) -> Attempt:
        if message.channel == "chat":
            return await self.poster.post(
                message.recipient,
                json.dumps(notice.chat_message()).encode(),
                {"content-type": "application/json"},
            )
        if self.mailer is None:
            return Attempt(status=None, error="no mail server is configured", permanent=True)
        return await self.mailer.send(
            message.recipient,
            notice.subject,
            notice.text,
            message_id=f"{message.event_id}.{message.purpose}.{message.id}",
            at=now,
        )

    async def _keep(
        self,
        connection: AsyncConnection,
        message: Claimed,
        attempt: Attempt,
        latency_ms: float,
        now: datetime,
    ) -> None:
        verdict = judge(
            attempt,
            number=message.attempts + 1,
            first_tried=message.first_tried_at or now,
            now=now,
            policy=self.policy,
            rng=self.rng,
        )
        await record(connection, message, attempt, verdict, at=now, latency_ms=latency_ms)
        metrics.OUTBOUND.labels(message.channel, verdict.outcome).inc()
        if verdict.outcome == "failed":
            log.warning(
                "outbound message failed",
                extra={"channel": message.channel, "delivery": message.id, "why": verdict.why},
            )

    def wake(self) -> None:
        """Something is due now (a redelivery, a resumed subscription): look at once."""
        self._wakeup.set()

    async def run(self, stopping: asyncio.Event) -> None:
        """Send until `stopping` is set; a failure ends the run and the supervisor starts
        it again (see `shared.supervise`)."""
        rounds = 0
        try:
            while not stopping.is_set():
                self._wakeup.clear()
                rounds += 1
                if rounds % PURGE_EVERY_ROUNDS == 0:
                    async with self.engine.begin() as connection:
                        await purge_finished(connection, self.clock() - KEEP_FINISHED)
                if await self.dispatch_due() == 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wakeup.wait(), IDLE_POLL_SECONDS)
        finally:
            await self.poster.close()
            if self.mailer is not None:
                await self.mailer.close()


@dataclass(frozen=True)
class Receiving:
    """A subscription as its deliveries need it: what signs them, and since when it fails."""

    secrets: list[str]
    failing_since: datetime | None


async def _subscriptions_of(
    connection: AsyncConnection, claimed: list[Claimed], now: datetime
) -> dict[str, Receiving]:
    """The subscriptions of the claimed deliveries: each one's current secret, and the
    previous one while a rotation lasts."""
    ids = {c.subscription_id for c in claimed if c.subscription_id}
    if not ids:
        return {}
    rows = await connection.execute(
        select(
            subscriptions.c.id,
            subscriptions.c.secret,
            subscriptions.c.previous_secret,
            subscriptions.c.previous_secret_until,
            subscriptions.c.failing_since,
        ).where(subscriptions.c.id.in_(ids))
    )
    return {
        str(row.id): Receiving(
            [row.secret]
            + (
                [row.previous_secret]
                if row.previous_secret
                and row.previous_secret_until
                and row.previous_secret_until > now
                else []
            ),
            row.failing_since,
        )
        for row in rows
    }
