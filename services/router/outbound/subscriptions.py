"""Webhook subscriptions and what was sent: the admin API's storage."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from services.router.domain.errors import DeliveryNotFinished, SubscriptionNotFound
from services.router.outbound.senders import new_signing_secret
from services.router.tables import deliveries, delivery_attempts, subscriptions

# After a rotation the old secret still signs (beside the new one) for this long, so
# receivers can switch without losing a delivery.
ROTATION_OVERLAP = timedelta(hours=24)
_SUBSCRIPTION_COLUMNS = [c for c in subscriptions.c if not c.name.endswith("secret")]


@dataclass(frozen=True)
class Subscriptions:
    engine: AsyncEngine

    async def create(
        self, url: str, event_types: Sequence[str], description: str
    ) -> tuple[str, str]:
        """Answers the new subscription's id and its signing secret, which is kept to sign
        with and never shown again."""
        subscription_id, secret = str(uuid.uuid4()), new_signing_secret()
        async with self.engine.begin() as connection:
            await connection.execute(
                insert(subscriptions).values(
                    id=subscription_id,
                    url=url,
                    event_types=sorted(set(event_types)),
                    description=description,
                    secret=secret,
                )
            )
        return subscription_id, secret

    async def listed(self, subscription_id: str | None = None) -> list[dict[str, Any]]:
        query = select(*_SUBSCRIPTION_COLUMNS).order_by(subscriptions.c.created_at)
        if subscription_id is not None:
            query = query.where(subscriptions.c.id == subscription_id)
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query)).all()
            counts = await connection.execute(
                select(deliveries.c.subscription_id, deliveries.c.status, func.count())
                .where(deliveries.c.subscription_id.in_([row.id for row in rows]))
                .group_by(deliveries.c.subscription_id, deliveries.c.status)
            )
        by_subscription: dict[str, dict[str, int]] = defaultdict(dict)
        for found, status, count in counts:
            by_subscription[str(found)][status] = count
        if subscription_id is not None and not rows:
            raise SubscriptionNotFound(subscription_id)
        return [
            {**row._asdict(), "id": str(row.id), "deliveries": by_subscription[str(row.id)]}
            for row in rows
        ]

    async def change(self, subscription_id: str, **values: Any) -> None:
        async with self.engine.begin() as connection:
            found = await connection.scalar(
                update(subscriptions)
                .where(subscriptions.c.id == subscription_id)
                .values(**values)
                .returning(subscriptions.c.id)
            )
        if found is None:
            raise SubscriptionNotFound(subscription_id)

    async def pause(self, subscription_id: str) -> None:
        await self.change(subscription_id, status="paused", paused_reason="paused by an admin")

    async def resume(self, subscription_id: str) -> None:
        """Active again, with a clean record: what waited is sent now, oldest first."""
        await self.change(subscription_id, status="active", paused_reason=None, failing_since=None)

    async def rotate(self, subscription_id: str, now: datetime) -> tuple[str, datetime]:
        """A new secret; the old one keeps signing beside it until the time answered."""
        secret, overlap_until = new_signing_secret(), now + ROTATION_OVERLAP
        await self.change(
            subscription_id,
            previous_secret=subscriptions.c.secret,
            previous_secret_until=overlap_until,
            secret=secret,
        )
        return secret, overlap_until

    async def delete(self, subscription_id: str) -> None:
        async with self.engine.begin() as connection:
            found = await connection.scalar(
                delete(subscriptions)
                .where(subscriptions.c.id == subscription_id)
                .returning(subscriptions.c.id)
            )
        if found is None:
            raise SubscriptionNotFound(subscription_id)

    async def deliveries(
        self, subscription_id: str, status: str | None, limit: int
    ) -> list[dict[str, Any]]:
        """The newest deliveries first, each with every attempt."""
        async with self.engine.connect() as connection:
            known = await connection.scalar(
                select(subscriptions.c.id).where(subscriptions.c.id == subscription_id)
            )
        if known is None:
            raise SubscriptionNotFound(subscription_id)
        query = (
            select(deliveries)
            .where(deliveries.c.subscription_id == subscription_id)
            .order_by(deliveries.c.id.desc())
            .limit(limit)
        )
        if status is not None:
            query = query.where(deliveries.c.status == status)
        return await _with_attempts(self.engine, query)

    async def redeliver(self, subscription_id: str, delivery_id: int, now: datetime) -> None:
        """Send a delivery that is over again, as a new series of attempts."""
        async with self.engine.begin() as connection:
            status = await connection.scalar(
                select(deliveries.c.status)
                .where(deliveries.c.id == delivery_id)
                .where(deliveries.c.subscription_id == subscription_id)
                .with_for_update()
            )
            if status is None:
                raise SubscriptionNotFound(subscription_id)
            if status == "pending":
                raise DeliveryNotFinished(str(delivery_id))
            await connection.execute(
                update(deliveries)
                .where(deliveries.c.id == delivery_id)
                .values(status="pending", due_at=now, first_tried_at=None, finished_at=None)
            )

    async def delivery(self, delivery_id: int) -> dict[str, Any]:
        [found] = await _with_attempts(
            self.engine, select(deliveries).where(deliveries.c.id == delivery_id)
        )
        return found

    async def notices(self, status: str | None, limit: int) -> list[dict[str, Any]]:
        """Emails and chat messages to people, newest first."""
        query = (
            select(deliveries)
            .where(deliveries.c.subscription_id.is_(None))
            .order_by(deliveries.c.id.desc())
            .limit(limit)
        )
        if status is not None:
            query = query.where(deliveries.c.status == status)
        return await _with_attempts(self.engine, query)

    async def summary(self) -> dict[str, dict[str, int]]:
        """How many messages are in each state, per channel."""
        async with self.engine.connect() as connection:
            rows = await connection.execute(
                select(deliveries.c.channel, deliveries.c.status, func.count()).group_by(
                    deliveries.c.channel, deliveries.c.status
                )
            )
            counts: dict[str, dict[str, int]] = defaultdict(dict)
            for channel, status, count in rows:
                counts[channel][status] = count
        return counts


async def _with_attempts(engine: AsyncEngine, query: Any) -> list[dict[str, Any]]:
    async with engine.connect() as connection:
        rows: list[Row[Any]] = list((await connection.execute(query)).all())
        attempts = await connection.execute(
            select(delivery_attempts)
            .where(delivery_attempts.c.delivery_id.in_([row.id for row in rows]))
            .order_by(delivery_attempts.c.number)
        )
        by_delivery: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for attempt in attempts:
            by_delivery[attempt.delivery_id].append(attempt._asdict())
    return [
        {
            **row._asdict(),
            "lead_id": str(row.lead_id),
            "attempt_log": by_delivery[row.id],
        }
        for row in rows
    ]
