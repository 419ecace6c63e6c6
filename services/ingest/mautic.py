"""Mautic 5 webhooks, as Mautic posts them (tests/fixtures/mautic/README.md says from where).

Mautic posts `{"mautic.<event type>": [item, ...], ...}`: one item in immediate mode,
several types with several items each in queued mode, every item with the `timestamp` at
which Mautic queued it. It signs the raw body only (`Webhook-Signature`, base64
HMAC-SHA256) and sends no time and no delivery id, so no time window holds it (queued
items come hours late); ids derived from Mautic's own ids make a redelivery record nothing
twice. "Send test payload" posts Mautic's sample items under a top-level `timestamp`,
which real deliveries never have: it is verified and answered, and records nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeGuard

from services.ingest.mautic_contact import company_fields, contact_fields, first_time, text
from services.ingest.sources import Delivery, HmacSignature, ItemProblem, MappedItem
from services.ingest.sources.items import item_digest, namespaced_id
from shared.problems import InvalidField, ProblemError

log = logging.getLogger(__name__)

MAUTIC_SIGNATURE = HmacSignature(
    scheme="hmac-sha256", header="Webhook-Signature", encoding="base64"
)
EVENT_PREFIX = "mautic."
TEST_PAYLOAD_KEY = "timestamp"
ITEM_TIME_KEY = "timestamp"

# Event types Mautic offers that are neither an interaction nor a change of the contact.
NOT_RECORDED = {
    "mautic.email_on_send": "an email sent is not something the contact did",
    "mautic.sms_on_send": "a text message sent is not something the contact did",
    "mautic.lead_post_delete": "leadflow records no deletions",
    "mautic.company_post_save": "a company is not a lead",
    "mautic.company_post_delete": "a company is not a lead",
    "mautic.lead_list_change": "segment membership is not an interaction",
}

Mapper = Callable[[Mapping[str, Any]], dict[str, Any]]


def mautic_delivery(payload: Any, _delivery_id: str | None = None) -> Delivery:
    """Every item of a Mautic webhook, mapped to an interaction or refused with its reason."""
    if not isinstance(payload, Mapping):
        where = InvalidField(field="body", message="must be an object")
        raise ProblemError(422, "a Mautic webhook is a JSON object", errors=[where])
    if TEST_PAYLOAD_KEY in payload:
        return Delivery([], _test_payload_note(payload))
    by_type = {
        event_type: items if isinstance(items, list) else [items]
        for event_type, items in payload.items()
    }
    mapped = [
        _mapped(event_type, item, f"{event_type}[{index}]")
        for event_type, items in by_type.items()
        for index, item in enumerate(items)
    ]
    if unknown := {
        event_type: len(items)
        for event_type, items in by_type.items()
        if event_type not in EVENT_MAPPERS and event_type not in NOT_RECORDED
    }:
        # Each such item is refused in the answer too; this is for whoever runs leadflow.
        log.warning("unsupported Mautic event types refused", extra={"items": unknown})
    return Delivery(mapped, None if mapped else "nothing to record: the body holds no event")


def _test_payload_note(payload: Mapping[str, Any]) -> str:
    ticked = [event_type for event_type in payload if event_type != TEST_PAYLOAD_KEY]
    note = "Mautic test payload: signature verified; test payloads are never recorded"
    if recorded := [event_type for event_type in ticked if event_type in EVENT_MAPPERS]:
        note += f"; recorded when they happen: {', '.join(recorded)}"
    if refused := [event_type for event_type in ticked if event_type not in EVENT_MAPPERS]:
        note += f"; not recorded (untick them): {', '.join(refused)}"
    return note


def _mapped(event_type: str, item: Any, label: str) -> MappedItem:
    to_interaction = EVENT_MAPPERS.get(event_type)
    if to_interaction is None:
        reason = NOT_RECORDED.get(event_type, "leadflow does not know this Mautic event type")
        message = f"{event_type} is not recorded ({reason}); untick it in Mautic's webhook"
        return MappedItem.refused(label, "event", message)
    if not isinstance(item, Mapping):
        return MappedItem.refused(label, "item", "must be an object")
    try:
        return MappedItem(label, to_interaction(item))
    except ItemProblem as problem:
        return MappedItem.refused(label, problem.field, problem.message)


def _part(item: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    part = item.get(key)
    if not isinstance(part, Mapping):
        raise ItemProblem(key, "is missing: not an item of this Mautic event type")
    return part


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _interaction(
    item: Mapping[str, Any],
    event: str,
    mautic_id: str | None,
    channel: str,
    kind: str,
    *,
    times: tuple[Any, ...],
    contact: dict[str, Any],
    properties: Mapping[str, Any],
) -> dict[str, Any]:
    """The raw interaction: time from the item's own dates, else when Mautic queued it."""
    name = event.removeprefix(EVENT_PREFIX)
    interaction: dict[str, Any] = {
        "id": namespaced_id("mautic", f"{name}:{mautic_id or item_digest(item)}"),
        "channel": channel,
        "type": kind,
        "contact": contact,
        "properties": {key: value for key, value in properties.items() if value is not None},
    }
    occurred = first_time(*times, item.get(ITEM_TIME_KEY))
    if occurred is not None:
        interaction["time"] = occurred
    return interaction


def _form_submit(item: Mapping[str, Any]) -> dict[str, Any]:
    submission = _part(item, "submission")
    form = _mapping(submission.get("form"))
    lead, results = _mapping(submission.get("lead")), _mapping(submission.get("results"))
    return _interaction(
        item,
        "mautic.form_on_submit",
        text(submission.get("id")),
        "web",
        "form_submit",
        times=(submission.get("dateSubmitted"),),
        contact=contact_fields(lead, results),
        properties={
            "form": text(form.get("name")) or text(form.get("alias")),
            "form_id": text(form.get("id")),
            "url": text(submission.get("referer")),
        },
    )


def _email_open(item: Mapping[str, Any]) -> dict[str, Any]:
    stat = _part(item, "stat")
    email = _mapping(stat.get("email"))
    # Every open of one sent email has the same stat; openCount tells the opens apart.
    stat_id, opens = text(stat.get("id")), text(stat.get("openCount"))
    return _interaction(
        item,
        "mautic.email_on_open",
        f"{stat_id}:{opens}" if stat_id and opens else stat_id,
        "email",
        "open",
        # dateRead stays the first open's; lastOpened is this open's.
        times=(stat.get("lastOpened"), stat.get("dateRead")),
        contact=contact_fields(_mapping(stat.get("lead")), {"email": stat.get("emailAddress")}),
        properties={
            "subject": text(email.get("subject")),
            "email_id": text(email.get("id")),
            "message_id": text(stat.get("trackingHash")),
        },
    )


def _page_hit(item: Mapping[str, Any]) -> dict[str, Any]:
    """A page visit; a visit through a tracked email link is that email's click."""
    hit = _part(item, "hit")
    lead = _mapping(hit.get("lead"))
    if hit.get("source") == "email":
        email = _mapping(hit.get("email"))
        channel, kind = "email", "click"
        properties = {
            "url": text(hit.get("url")),
            "subject": text(email.get("subject")),
            "email_id": text(hit.get("sourceId")) or text(email.get("id")),
        }
    else:
        channel, kind = "web", "page_view"
        properties = {
            "url": text(hit.get("url")),
            "referrer": text(hit.get("referer")),
            "title": text(hit.get("urlTitle")),
        }
    return _interaction(
        item,
        "mautic.page_on_hit",
        text(hit.get("id")),
        channel,
        kind,
        times=(hit.get("dateHit"),),
        contact=contact_fields(lead),
        properties=properties,
    )


def _contact_change(
    event: str, kind: str = "profile_update", **properties: Any
) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """A change of the contact in Mautic: the contact's fields, and what changed."""

    def to_interaction(item: Mapping[str, Any]) -> dict[str, Any]:
        contact = _part(item, "contact")
        # Mautic has no id for a contact's change: its id and the item tell them apart.
        change_id = f"{text(contact.get('id'))}:{item_digest(item)[:16]}"
        return _interaction(
            item,
            event,
            change_id,
            "email",
            kind,
            times=(contact.get("dateModified"),),
            contact=contact_fields(contact),
            properties=properties,
        )

    return to_interaction


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _points_change(item: Mapping[str, Any]) -> dict[str, Any]:
    points = _part(item, "points")
    old, new = points.get("old_points"), points.get("new_points")
    if not (_is_number(old) and _is_number(new)):
        raise ItemProblem("points", "needs old_points and new_points as numbers")
    change = _contact_change("mautic.lead_points_change", "points_changed", delta=new - old)
    interaction = change(item)
    interaction["properties"]["points"] = new
    return interaction


def _subscription_change(item: Mapping[str, Any]) -> dict[str, Any]:
    """An email unsubscribe or bounce; any other change of subscription is a contact change."""
    channel, status = text(item.get("channel")), text(item.get("new_status"))
    event = "mautic.lead_channel_subscription_changed"
    kinds = {"unsubscribed": "unsubscribe", "bounced": "bounce"}
    if channel == "email" and status in kinds:
        return _contact_change(event, kinds[status])(item)
    return _contact_change(event, change=f"{channel} subscription: {status}")(item)


def _company_change(item: Mapping[str, Any]) -> dict[str, Any]:
    """A contact added to a company takes the company's name, industry and size."""
    company = _part(item, "company")
    added = item.get("added") is True
    event = "mautic.lead_company_change"
    interaction = _contact_change(event, change="company added" if added else "company removed")(
        item
    )
    if added:
        interaction["contact"].update(company_fields(company))
    return interaction


EVENT_MAPPERS: dict[str, Mapper] = {
    "mautic.form_on_submit": _form_submit,
    "mautic.email_on_open": _email_open,
    "mautic.page_on_hit": _page_hit,
    "mautic.lead_post_save_new": _contact_change("mautic.lead_post_save_new", change="created"),
    "mautic.lead_post_save_update": _contact_change(
        "mautic.lead_post_save_update", change="updated"
    ),
    "mautic.lead_points_change": _points_change,
    "mautic.lead_channel_subscription_changed": _subscription_change,
    "mautic.lead_company_change": _company_change,
}
