"""Outbound webhooks (admin): subscriptions, their deliveries, and the notices to people."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from services.router.api.dependencies import admin_routes
from services.router.api.fields import OutboundUrl
from services.router.outbound.subscriptions import Subscriptions
from shared.events import NO_NUL
from shared.http import from_app_state
from shared.problems import problem_responses

Store = Annotated[Subscriptions, from_app_state("subscriptions")]

# What a subscription may ask for: every hand-off, nurture and sales-action event type.
EventType = Literal[
    "leadflow.handoff.assigned",
    "leadflow.handoff.reassigned",
    "leadflow.handoff.accepted",
    "leadflow.handoff.escalated",
    "leadflow.handoff.queued",
    "leadflow.nurture.returned",
    "leadflow.sales.accept",
    "leadflow.sales.reject",
    "leadflow.sales.qualify",
    "leadflow.sales.convert",
    "leadflow.sales.won",
    "leadflow.sales.lost",
]
DeliveryStatus = Literal["pending", "delivered", "failed", "skipped"]


class NewSubscription(BaseModel):
    url: OutboundUrl = Field(description="where each event is POSTed")
    event_types: list[EventType] = Field(min_length=1, max_length=32)
    description: str = Field(default="", max_length=500, pattern=NO_NUL)


class Counts(BaseModel):
    pending: int = 0
    delivered: int = 0
    failed: int = 0
    skipped: int = 0


class SubscriptionView(BaseModel):
    id: str
    url: str
    description: str
    event_types: list[str]
    status: Literal["active", "paused"]
    paused_reason: str | None
    failing_since: datetime | None = Field(description="when its deliveries began to fail")
    previous_secret_until: datetime | None = Field(
        description="until then, deliveries are signed with the previous secret too"
    )
    created_at: datetime
    deliveries: Counts


class CreatedSubscription(SubscriptionView):
    secret: str = Field(description="the Standard Webhooks signing secret: shown only now")


class RotatedSecret(BaseModel):
    secret: str = Field(description="the new signing secret: shown only now")
    previous_secret_until: datetime


class AttemptView(BaseModel):
    number: int
    at: datetime
    status_code: int | None
    latency_ms: float
    response_head: str | None = Field(description="the first bytes of the answer")
    error: str | None


class DeliveryView(BaseModel):
    id: int
    event_id: str
    lead_id: str
    channel: str
    purpose: str = Field(description="the event type, or what a notice is about")
    recipient: str
    status: DeliveryStatus
    attempts: int
    due_at: datetime = Field(description="the next attempt, while pending")
    created_at: datetime
    finished_at: datetime | None
    last_error: str | None
    attempt_log: list[AttemptView]


class OutboundSummary(BaseModel):
    webhook: Counts
    email: Counts
    chat: Counts
    paused_subscriptions: list[SubscriptionView]


routes = admin_routes()
NOT_FOUND = problem_responses(404)
SubscriptionId = uuid.UUID


@routes.post("/subscriptions", status_code=201, summary="Subscribe a URL to events")
async def create_subscription(store: Store, body: NewSubscription) -> CreatedSubscription:
    subscription_id, secret = await store.create(body.url, body.event_types, body.description)
    [view] = await store.listed(subscription_id)
    return CreatedSubscription(**view, secret=secret)


@routes.get("/subscriptions", summary="Every subscription, with its deliveries counted")
async def list_subscriptions(store: Store) -> list[SubscriptionView]:
    return [SubscriptionView(**view) for view in await store.listed()]


@routes.get("/subscriptions/{subscription_id}", summary="One subscription", responses=NOT_FOUND)
async def get_subscription(store: Store, subscription_id: SubscriptionId) -> SubscriptionView:
    [view] = await store.listed(str(subscription_id))
    return SubscriptionView(**view)


@routes.post(
    "/subscriptions/{subscription_id}/pause",
    summary="Stop sending; what happens meanwhile waits",
    responses=NOT_FOUND,
)
async def pause_subscription(store: Store, subscription_id: SubscriptionId) -> SubscriptionView:
    await store.pause(str(subscription_id))
    return await get_subscription(store, subscription_id)


@routes.post(
    "/subscriptions/{subscription_id}/resume",
    summary="Send again, starting with what waited",
    responses=NOT_FOUND,
)
async def resume_subscription(
    request: Request, store: Store, subscription_id: SubscriptionId
) -> SubscriptionView:
    await store.resume(str(subscription_id))
    request.app.state.dispatcher.wake()
    return await get_subscription(store, subscription_id)


@routes.post(
    "/subscriptions/{subscription_id}/rotate-secret",
    summary="A new signing secret; the old one also signs for a day",
    responses=NOT_FOUND,
)
async def rotate_secret(store: Store, subscription_id: SubscriptionId) -> RotatedSecret:
    secret, until = await store.rotate(str(subscription_id), datetime.now(UTC))
    return RotatedSecret(secret=secret, previous_secret_until=until)


@routes.delete(
    "/subscriptions/{subscription_id}",
    status_code=204,
    summary="Delete a subscription and its deliveries",
    responses=NOT_FOUND,
)
async def delete_subscription(store: Store, subscription_id: SubscriptionId) -> Response:
    await store.delete(str(subscription_id))
    return Response(status_code=204)


@routes.get(
    "/subscriptions/{subscription_id}/deliveries",
    summary="Deliveries, newest first, with every attempt",
    responses=NOT_FOUND,
)
async def list_deliveries(
    store: Store,
    subscription_id: SubscriptionId,
    status: DeliveryStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[DeliveryView]:
    found = await store.deliveries(str(subscription_id), status, limit)
    return [DeliveryView(**delivery) for delivery in found]


@routes.post(
    "/subscriptions/{subscription_id}/deliveries/{delivery_id}/redeliver",
    status_code=202,
    summary="Send a delivered or failed delivery again",
    responses=problem_responses(404, 409),
)
async def redeliver(
    request: Request,
    store: Store,
    subscription_id: SubscriptionId,
    delivery_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
) -> DeliveryView:
    await store.redeliver(str(subscription_id), delivery_id, datetime.now(UTC))
    request.app.state.dispatcher.wake()
    return DeliveryView(**await store.delivery(delivery_id))


@routes.get("/notifications", summary="Emails and chat messages to people, newest first")
async def list_notifications(
    store: Store,
    status: DeliveryStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[DeliveryView]:
    return [DeliveryView(**notice) for notice in await store.notices(status, limit)]


@routes.get(
    "/notifications/summary",
    summary="Outbound messages per channel and state, and paused subscriptions",
)
async def outbound_summary(store: Store) -> OutboundSummary:
    counts: dict[str, Any] = await store.summary()
    paused = [SubscriptionView(**s) for s in await store.listed() if s["status"] == "paused"]
    return OutboundSummary(
        webhook=Counts(**counts.get("webhook", {})),
        email=Counts(**counts.get("email", {})),
        chat=Counts(**counts.get("chat", {})),
        paused_subscriptions=paused,
    )
