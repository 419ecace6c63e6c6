"""A webhook's items on their way to interactions: mapped, or refused with the reason.

Every sender's adapter (Standard Webhooks, Mautic, a declared source) answers a
`Delivery`; the route validates and publishes what was mapped and answers per item.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from shared.problems import InvalidField

# What an interaction id may be (shared.events.EventId): printable ASCII, 128 at most.
_EVENT_ID = re.compile(r"^[!-~]{1,128}$")


@dataclass(frozen=True)
class MappedItem:
    """One item of a webhook: `raw` in the `POST /v1/events` shape, or why it has none."""

    label: str
    raw: dict[str, Any] | None = None
    errors: tuple[InvalidField, ...] = ()

    @classmethod
    def refused(cls, label: str, field: str, message: str) -> MappedItem:
        return cls(label, errors=(InvalidField(field=field, message=message),))


@dataclass(frozen=True)
class Delivery:
    """What one webhook POST carried; `note` says why there is nothing to record."""

    items: list[MappedItem]
    note: str | None = None


class ItemProblem(Exception):
    """One item cannot be mapped; the item is refused, the rest of the webhook goes on."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def item_digest(item: Any) -> str:
    """The same for the same item however its keys are ordered, so redeliveries match."""
    canonical = json.dumps(item, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def namespaced_id(namespace: str, value: str) -> str:
    """`<namespace>:<value>`; a value an id cannot hold (too long, spaces) by its digest."""
    candidate = f"{namespace}:{value}"
    if _EVENT_ID.match(candidate):
        return candidate
    return f"{namespace}:sha256:{hashlib.sha256(value.encode()).hexdigest()[:40]}"
