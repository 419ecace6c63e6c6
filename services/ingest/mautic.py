"""Mautic webhooks: signature check and Mautic events mapped to leadflow interactions.

Mautic posts `{"mautic.<event>": [item, ...], ..., "timestamp": "..."}` and signs the raw
body with `Webhook-Signature: base64(HMAC-SHA256(body, secret))`. Each supported item
becomes a raw dict in the `POST /v1/events` shape; the caller validates them with the
shared models, so one bad item is one per-item error.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

SENT_AT_KEY = "timestamp"
EVENT_PREFIX = "mautic."

# Contact fields and the Mautic names (lead fields or form field aliases) they come from.
CONTACT_SOURCES: dict[str, tuple[str, ...]] = {
    "email": ("email",),
    "first_name": ("firstname", "first_name"),
    "last_name": ("lastname", "last_name"),
    "company": ("company",),
    "job_title": ("position", "job_title"),
    "country": ("country",),
    "phone": ("phone", "mobile"),
}

# Mautic stores countries by English name; the common ones for our markets.
COUNTRY_CODES = {
    "austria": "AT",
    "belgium": "BE",
    "canada": "CA",
    "denmark": "DK",
    "france": "FR",
    "germany": "DE",
    "ireland": "IE",
    "italy": "IT",
    "netherlands": "NL",
    "poland": "PL",
    "spain": "ES",
    "sweden": "SE",
    "switzerland": "CH",
    "united kingdom": "GB",
    "united states": "US",
}


def verify_mautic_signature(body: bytes, signature: str | None, secret: str) -> bool:
    """Whether `signature` is base64(HMAC-SHA256(body, secret)); missing or garbage is False."""
    if not signature or not secret:
        return False
    try:
        given = base64.b64decode(signature.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return hmac.compare_digest(given, expected)


def mautic_sent_at(payload: Mapping[str, Any]) -> datetime | None:
    """When Mautic sent the webhook (the top-level `timestamp`), or None if missing/unparseable."""
    return _parse_time(payload.get(SENT_AT_KEY))


def unsupported_event_types(payload: Mapping[str, Any]) -> list[str]:
    """The event types in the payload that leadflow does not map, for the caller to report."""
    return sorted(key for key in payload if key != SENT_AT_KEY and key not in EVENT_MAPPERS)


def mautic_interactions(payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every supported Mautic event as a raw, not yet validated, `POST /v1/events` dict.

    Ids are derived from Mautic's own ids, so a redelivered webhook yields the same ids.
    """
    interactions: list[dict[str, Any]] = []
    for event_type, to_interaction in EVENT_MAPPERS.items():
        items = payload.get(event_type)
        if isinstance(items, list):
            interactions.extend(to_interaction(item) for item in items)
    return interactions


def _form_submission(item: Any) -> dict[str, Any]:
    submission = _mapping(_mapping(item).get("submission"))
    form = _mapping(submission.get("form"))
    return _interaction(
        item,
        event_type="mautic.form_on_submit",
        source_id=submission.get("id"),
        channel="web",
        kind="form_submit",
        time=submission.get("dateSubmitted"),
        contact=_contact(_mapping(submission.get("lead")), _mapping(submission.get("results"))),
        properties={
            "form": _text(form.get("name")) or _text(form.get("alias")),
            "url": _text(submission.get("referer")),
        },
    )


def _email_open(item: Any) -> dict[str, Any]:
    stat = _mapping(_mapping(item).get("stat"))
    email = _mapping(stat.get("email"))
    return _interaction(
        item,
        event_type="mautic.email_on_open",
        source_id=stat.get("id"),
        channel="email",
        kind="open",
        time=stat.get("dateRead"),
        contact=_contact(_mapping(stat.get("lead")), {"email": stat.get("emailAddress")}),
        properties={
            "subject": _text(email.get("subject")),
            "message_id": _text(stat.get("trackingHash")),
        },
    )


def _page_hit(item: Any) -> dict[str, Any]:
    hit = _mapping(_mapping(item).get("hit"))
    return _interaction(
        item,
        event_type="mautic.page_on_hit",
        source_id=hit.get("id"),
        channel="web",
        kind="page_view",
        time=hit.get("dateHit"),
        contact=_contact(_mapping(hit.get("lead"))),
        properties={"url": _text(hit.get("url")), "referrer": _text(hit.get("referer"))},
    )


EVENT_MAPPERS: dict[str, Callable[[Any], dict[str, Any]]] = {
    "mautic.form_on_submit": _form_submission,
    "mautic.email_on_open": _email_open,
    "mautic.page_on_hit": _page_hit,
}


def _interaction(
    item: Any,
    *,
    event_type: str,
    source_id: Any,
    channel: str,
    kind: str,
    time: Any,
    contact: dict[str, str],
    properties: dict[str, str | None],
) -> dict[str, Any]:
    """The raw interaction, time in UTC; falls back to the item's `timestamp`, else receipt time."""
    occurred = _parse_time(time) or _parse_time(_mapping(item).get(SENT_AT_KEY))
    interaction: dict[str, Any] = {
        "id": _interaction_id(event_type, source_id, item),
        "channel": channel,
        "type": kind,
        "contact": contact,
        "properties": {name: value for name, value in properties.items() if value},
    }
    if occurred is not None:
        interaction["time"] = occurred.astimezone(UTC).isoformat()
    return interaction


def _interaction_id(event_type: str, source_id: Any, item: Any) -> str:
    """`mautic:<event>:<Mautic id>`, else a digest of the item so redeliveries still match."""
    name = event_type.removeprefix(EVENT_PREFIX)
    mautic_id = _text(source_id)
    if mautic_id is None:
        canonical = json.dumps(item, sort_keys=True, separators=(",", ":"), default=str)
        mautic_id = hashlib.sha256(canonical.encode()).hexdigest()[:32]
    return f"mautic:{name}:{mautic_id}"


def _contact(lead: Mapping[str, Any], submitted: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Contact fields from the Mautic lead, gaps filled from what was submitted alongside."""
    contact: dict[str, str] = {}
    for field, names in CONTACT_SOURCES.items():
        value = _first(_lead_value(lead, name) for name in names)
        if value is None and submitted:
            value = _first(_text(submitted.get(name)) for name in names)
        if field == "country" and value is not None:
            value = _country_code(value)
        if value is not None:
            contact[field] = value
    lead_id = _text(lead.get("id"))
    if "email" not in contact and lead_id is not None:
        contact["anonymous_id"] = f"mautic:{lead_id}"
    return contact


def _lead_value(lead: Mapping[str, Any], name: str) -> str | None:
    """A lead field, flattened (`lead[name]`) or grouped (`lead.fields.<group>[name].value`)."""
    flat = _text(lead.get(name))
    if flat is not None:
        return flat
    for group in _mapping(lead.get("fields")).values():
        field = _mapping(group).get(name)
        value = _text(field.get("value")) if isinstance(field, Mapping) else _text(field)
        if value is not None:
            return value
    return None


def _country_code(country: str) -> str | None:
    """ISO 3166-1 alpha-2 for a Mautic country name (or a code already); None if unknown."""
    if len(country) == 2 and country.isalpha():
        return country.upper()
    return COUNTRY_CODES.get(country.casefold())


def _parse_time(value: Any) -> datetime | None:
    """An aware datetime from Mautic's ISO-8601 or `YYYY-MM-DD HH:MM:SS` (UTC) dates."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def _text(value: Any) -> str | None:
    """A non-empty trimmed string from a scalar Mautic value, else None."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    return str(value).strip() or None


def _first(values: Iterable[str | None]) -> str | None:
    return next((value for value in values if value is not None), None)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
