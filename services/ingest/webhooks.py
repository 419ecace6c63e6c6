"""Signed webhooks: which sender a path names, its signature, and its items as interactions.

Three kinds of sender share one route: Standard Webhooks (`standard`), Mautic (`mautic`),
and every source declared in `LEADFLOW_SOURCES`. Each is verified by its own signature,
and its body becomes a `Delivery` of items, each mapped or refused on its own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from services.ingest import metrics
from services.ingest.auth import check_signature, standard_secret_problem, webhook_secret
from services.ingest.domain import with_default_ids
from services.ingest.handlers import ItemResult, accept_interactions
from services.ingest.mautic import MAUTIC_SIGNATURE, mautic_delivery
from services.ingest.publisher import Publisher
from services.ingest.sources import (
    DeclaredMapping,
    Delivery,
    HmacSignature,
    MappedItem,
    Source,
    StandardSignature,
)
from shared.problems import ProblemError

log = logging.getLogger(__name__)

Deliver = Callable[[Any, str | None], Delivery]
STANDARD_SIGNATURE = StandardSignature(scheme="standard-webhooks")


class NothingRecorded(BaseModel):
    """A verified webhook with nothing to record (a test payload, no items): said so."""

    accepted: int = 0
    rejected: int = 0
    results: list[ItemResult] = []
    detail: str = Field(description="why nothing was recorded")


def standard_delivery(payload: Any, webhook_id: str | None) -> Delivery:
    """One event, or `{"events": [...]}`; an item without an id gets `webhook:<id>:<index>`."""
    if isinstance(payload, Mapping) and "events" in payload:
        events = payload["events"]
        items, label = (events if isinstance(events, list) else [events]), "events[{}]"
    else:
        items, label = [payload], "body"
    mapped = [
        MappedItem(label.format(index), item)
        if isinstance(item, dict)
        else MappedItem.refused(label.format(index), "item", "must be an object")
        for index, item in enumerate(with_default_ids(items, f"webhook:{webhook_id}"))
    ]
    return Delivery(mapped, None if mapped else "nothing to record: the body holds no event")


@dataclass(frozen=True)
class WebhookSender:
    """A sender the route serves: how it signs and how its body becomes items."""

    name: str
    signature: HmacSignature | StandardSignature
    deliver: Deliver

    def receive(
        self, secret: str, body: bytes, payload: Any, headers: Mapping[str, str]
    ) -> Delivery:
        """The items of a verified body; 401 for a body the signature does not vouch for."""
        delivery_id = check_signature(self.signature, secret, body, headers)
        return self.deliver(payload, delivery_id)


class WebhookSenders:
    """The built-in senders and the declared sources, by the name in `/v1/webhooks/{name}`."""

    def __init__(self, secrets: Mapping[str, str], sources: Sequence[Source] = ()) -> None:
        built_in = [
            WebhookSender("standard", STANDARD_SIGNATURE, standard_delivery),
            WebhookSender("mautic", MAUTIC_SIGNATURE, mautic_delivery),
        ]
        declared = [
            WebhookSender(source.name, source.signature, DeclaredMapping(source).deliver)
            for source in sources
        ]
        self._secrets = dict(secrets)
        self._senders = {sender.name: sender for sender in [*built_in, *declared]}
        for sender in self._senders.values():
            secret = self._secrets.get(sender.name)
            standard = isinstance(sender.signature, StandardSignature)
            if standard and secret is not None and (problem := standard_secret_problem(secret)):
                raise ValueError(f"LEADFLOW_WEBHOOK_SECRETS[{sender.name!r}]: {problem}")
        if unsigned := [source.name for source in sources if source.name not in self._secrets]:
            log.warning(
                "declared sources without a secret answer 404 until they get one",
                extra={"sources": unsigned},
            )

    def sender(self, name: str) -> tuple[WebhookSender, str]:
        """The sender and its secret; a sender unknown or without a secret is a 404."""
        sender = self._senders.get(name)
        if sender is None:
            raise ProblemError(404, f"unknown webhook provider {name!r}")
        return sender, webhook_secret(self._secrets, name)


async def accept_webhook_items(
    items: Sequence[MappedItem], *, publisher: Publisher, source: str
) -> list[ItemResult]:
    """Validate and publish the mapped items; answer every item, refused ones included."""
    mapped = [item.raw for item in items if item.raw is not None]
    accepted = iter(
        await accept_interactions(
            mapped, publisher=publisher, source=source, allowed_channels=["*"]
        )
        if mapped
        else []
    )
    results = []
    for index, item in enumerate(items):
        if item.raw is None:
            metrics.EVENTS.labels("unknown", "rejected").inc()
            result = ItemResult(index=index, status=422, errors=list(item.errors))
        else:
            result = next(accepted)
        results.append(result.model_copy(update={"index": index, "item": item.label}))
    return results
