"""Mautic webhooks: signatures, sent-at, and Mautic events mapped to interactions."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import TypeAdapter

from services.ingest.mautic import (
    mautic_interactions,
    mautic_sent_at,
    unsupported_event_types,
    verify_mautic_signature,
)
from shared.events import EmailInteraction, Interaction, WebInteraction

pytestmark = pytest.mark.unit

SECRET = "mautic-webhook-secret"
INTERACTION = TypeAdapter[Any](Interaction)


def grouped_lead(lead_id: int, **values: str) -> dict[str, Any]:
    """A Mautic contact as the `lead` serializer group gives it: fields by field group."""
    core = {
        name: {"id": index, "group": "core", "alias": name, "type": "text", "value": value}
        for index, (name, value) in enumerate(values.items(), start=1)
    }
    return {"id": lead_id, "points": 25, "color": None, "fields": {"core": core, "social": []}}


FORM_SUBMISSION: dict[str, Any] = {
    "submission": {
        "id": 731,
        "ipAddress": {"id": 12, "ipAddress": "203.0.113.7", "ipDetails": None},
        "form": {
            "id": 3,
            "name": "Whitepaper download",
            "alias": "whitepaperd",
            "category": None,
        },
        "lead": grouped_lead(
            42,
            firstname="Ada",
            lastname="Lovelace",
            email="Ada@Example.com",
            company="Analytical Engines Ltd",
            position="Head of Engineering",
            country="Germany",
            phone="",
            mobile="+49 30 1234567",
        ),
        "trackingId": "k3t0r8ls2v4q",
        "dateSubmitted": "2026-11-24T09:58:12+00:00",
        "referer": "https://www.example.com/whitepapers/lead-scoring",
        "results": {"email": "ada@example.com", "firstname": "Ada", "lastname": "Lovelace"},
        "page": None,
    },
    "timestamp": "2026-11-24T09:58:13+00:00",
}

EMAIL_OPEN: dict[str, Any] = {
    "stat": {
        "id": 9051,
        "emailAddress": "grace@example.com",
        "ipAddress": {"id": 13, "ipAddress": "198.51.100.4"},
        "dateSent": "2026-11-23T08:00:00+00:00",
        "isRead": True,
        "isFailed": False,
        "dateRead": "2026-11-24 09:30:05",
        "retryCount": 0,
        "source": "campaign.event",
        "openCount": 1,
        "lastOpened": "2026-11-24T09:30:05+00:00",
        "sourceId": 7,
        "trackingHash": "5f9b2a1c3d4e6",
        "viewedInBrowser": False,
        "lead": {
            "id": 57,
            "points": 10,
            "firstname": "Grace",
            "lastname": "Hopper",
            "email": "",
            "company": "Compilers Inc",
            "position": None,
            "country": "United States",
            "phone": "+1 555 0100",
        },
        "email": {"id": 4, "name": "November newsletter", "subject": "Scoring leads, fast"},
    },
    "timestamp": "2026-11-24T09:30:06+00:00",
}

PAGE_HIT: dict[str, Any] = {
    "hit": {
        "id": 18862,
        "dateHit": "2026-11-24T11:15:00+01:00",
        "dateLeft": None,
        "page": {"id": 2, "title": "Pricing", "alias": "pricing", "category": None},
        "lead": grouped_lead(61, firstname="Alan", country="Atlantis"),
        "ipAddress": {"id": 14, "ipAddress": "192.0.2.9"},
        "country": "Germany",
        "code": 200,
        "referer": "https://www.google.com/",
        "url": "https://www.example.com/pricing?utm_source=google",
        "urlTitle": "Pricing",
        "userAgent": "Mozilla/5.0",
        "trackingId": "a1b2c3d4",
        "source": None,
        "sourceId": None,
        "query": {"utm_source": "google"},
    },
    "timestamp": "2026-11-24T10:15:01+00:00",
}


def webhook(**events: list[Any]) -> dict[str, Any]:
    payload: dict[str, Any] = {f"mautic.{name}": items for name, items in events.items()}
    payload["timestamp"] = "2026-11-24T10:00:00+00:00"
    return payload


def sign(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def test_form_submission_is_a_web_form_submit_with_the_lead_as_contact() -> None:
    [interaction] = mautic_interactions(webhook(form_on_submit=[FORM_SUBMISSION]))

    assert interaction == {
        "id": "mautic:form_on_submit:731",
        "channel": "web",
        "type": "form_submit",
        "time": "2026-11-24T09:58:12+00:00",
        "contact": {
            "email": "Ada@Example.com",
            "first_name": "Ada",
            "last_name": "Lovelace",
            "company": "Analytical Engines Ltd",
            "job_title": "Head of Engineering",
            "country": "DE",
            "phone": "+49 30 1234567",
        },
        "properties": {
            "form": "Whitepaper download",
            "url": "https://www.example.com/whitepapers/lead-scoring",
        },
    }
    validated = INTERACTION.validate_python(interaction)
    assert isinstance(validated, WebInteraction)
    assert validated.contact.identity_key == "ada@example.com"


def test_email_open_takes_subject_and_falls_back_to_the_stat_email_address() -> None:
    [interaction] = mautic_interactions(webhook(email_on_open=[EMAIL_OPEN]))

    assert interaction == {
        "id": "mautic:email_on_open:9051",
        "channel": "email",
        "type": "open",
        "time": "2026-11-24T09:30:05+00:00",
        "contact": {
            "email": "grace@example.com",
            "first_name": "Grace",
            "last_name": "Hopper",
            "company": "Compilers Inc",
            "country": "US",
            "phone": "+1 555 0100",
        },
        "properties": {"subject": "Scoring leads, fast", "message_id": "5f9b2a1c3d4e6"},
    }
    assert isinstance(INTERACTION.validate_python(interaction), EmailInteraction)


def test_page_hit_of_an_anonymous_visitor_is_a_page_view_keyed_by_the_mautic_lead() -> None:
    [interaction] = mautic_interactions(webhook(page_on_hit=[PAGE_HIT]))

    assert interaction == {
        "id": "mautic:page_on_hit:18862",
        "channel": "web",
        "type": "page_view",
        "time": "2026-11-24T10:15:00+00:00",
        "contact": {"first_name": "Alan", "anonymous_id": "mautic:61"},
        "properties": {
            "url": "https://www.example.com/pricing?utm_source=google",
            "referrer": "https://www.google.com/",
        },
    }
    validated = INTERACTION.validate_python(interaction)
    assert isinstance(validated, WebInteraction)
    assert validated.time == datetime(2026, 11, 24, 10, 15, tzinfo=UTC)


def test_one_webhook_with_several_event_types_maps_every_item() -> None:
    payload = webhook(
        form_on_submit=[FORM_SUBMISSION],
        page_on_hit=[PAGE_HIT, PAGE_HIT | {"hit": PAGE_HIT["hit"] | {"id": 18863}}],
        email_on_open=[EMAIL_OPEN],
    )

    ids = [interaction["id"] for interaction in mautic_interactions(payload)]

    assert ids == [
        "mautic:form_on_submit:731",
        "mautic:email_on_open:9051",
        "mautic:page_on_hit:18862",
        "mautic:page_on_hit:18863",
    ]


def test_form_results_fill_in_when_the_lead_is_not_yet_known() -> None:
    submission = copy.deepcopy(FORM_SUBMISSION)
    submission["submission"]["lead"] = {"id": 43, "fields": []}
    submission["submission"]["results"] = {
        "email": "ada@example.com",
        "first_name": "Ada",
        "company": "Analytical Engines Ltd",
        "country": "gb",
        "consent": ["newsletter"],
    }

    [interaction] = mautic_interactions(webhook(form_on_submit=[submission]))

    assert interaction["contact"] == {
        "email": "ada@example.com",
        "first_name": "Ada",
        "company": "Analytical Engines Ltd",
        "country": "GB",
    }


def test_redelivered_webhook_gives_the_same_ids() -> None:
    payload = webhook(form_on_submit=[FORM_SUBMISSION], page_on_hit=[PAGE_HIT])

    assert mautic_interactions(payload) == mautic_interactions(copy.deepcopy(payload))


def test_item_without_a_mautic_id_gets_a_content_digest_id() -> None:
    hit = copy.deepcopy(PAGE_HIT)
    del hit["hit"]["id"]
    reordered = json.loads(json.dumps(hit, sort_keys=True))
    other = copy.deepcopy(hit)
    other["hit"]["url"] = "https://www.example.com/about"

    [first] = mautic_interactions(webhook(page_on_hit=[hit]))
    [again] = mautic_interactions(webhook(page_on_hit=[reordered]))
    [different] = mautic_interactions(webhook(page_on_hit=[other]))

    assert first["id"].startswith("mautic:page_on_hit:")
    assert len(first["id"].removeprefix("mautic:page_on_hit:")) == 32
    assert first["id"] == again["id"]
    assert first["id"] != different["id"]
    INTERACTION.validate_python(first)


def test_event_time_falls_back_to_the_item_timestamp() -> None:
    hit = copy.deepcopy(PAGE_HIT)
    hit["hit"]["dateHit"] = "last tuesday"

    [interaction] = mautic_interactions(webhook(page_on_hit=[hit]))

    assert interaction["time"] == "2026-11-24T10:15:01+00:00"


def test_unusable_item_still_maps_so_the_caller_reports_it() -> None:
    [interaction] = mautic_interactions(webhook(page_on_hit=[{"hit": {"id": 5}}]))

    assert interaction == {
        "id": "mautic:page_on_hit:5",
        "channel": "web",
        "type": "page_view",
        "contact": {},
        "properties": {},
    }
    with pytest.raises(ValueError, match="either email or anonymous_id is required"):
        INTERACTION.validate_python(interaction)


def test_unsupported_event_types_are_reported_and_not_mapped() -> None:
    payload = webhook(
        email_on_send=[{"email": {"id": 4}, "contact": {"id": 57}}],
        form_on_submit=[FORM_SUBMISSION],
        lead_post_save_new=[{"contact": {"id": 42}}],
    )

    assert unsupported_event_types(payload) == [
        "mautic.email_on_send",
        "mautic.lead_post_save_new",
    ]
    assert [i["id"] for i in mautic_interactions(payload)] == ["mautic:form_on_submit:731"]
    assert unsupported_event_types(webhook(page_on_hit=[PAGE_HIT])) == []


def test_signature_of_the_raw_body_with_the_secret_is_accepted() -> None:
    body = json.dumps(webhook(page_on_hit=[PAGE_HIT])).encode()

    assert verify_mautic_signature(body, sign(body), SECRET)


@pytest.mark.parametrize(
    "signature",
    [
        None,
        "",
        "not base64!",
        "ünïcode",
        sign(b"another body"),
        sign(b'{"mautic.page_on_hit": []}', secret="someone-else"),
    ],
)
def test_missing_wrong_or_garbage_signatures_are_rejected(signature: str | None) -> None:
    assert not verify_mautic_signature(b'{"mautic.page_on_hit": []}', signature, SECRET)


def test_no_secret_accepts_nothing() -> None:
    body = b"{}"

    assert not verify_mautic_signature(body, sign(body, secret=""), "")


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        ("2026-11-24T10:00:00+00:00", datetime(2026, 11, 24, 10, tzinfo=UTC)),
        (
            "2026-11-24T11:00:00+01:00",
            datetime(2026, 11, 24, 11, tzinfo=timezone(timedelta(hours=1))),
        ),
        ("2026-11-24 10:00:00", datetime(2026, 11, 24, 10, tzinfo=UTC)),
        ("yesterday", None),
        (1764000000, None),
        (None, None),
    ],
)
def test_sent_at_is_the_top_level_timestamp(timestamp: Any, expected: datetime | None) -> None:
    sent_at = mautic_sent_at({"mautic.page_on_hit": [], "timestamp": timestamp})

    assert sent_at == expected
    if sent_at is not None:
        assert sent_at.tzinfo is not None


def test_sent_at_is_none_without_a_timestamp() -> None:
    assert mautic_sent_at({"mautic.page_on_hit": []}) is None
