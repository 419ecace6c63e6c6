"""Ingest's pure rules: validation, permissions, clock skew, the recorded envelope."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.ingest.domain import (
    Rejected,
    check_interaction,
    encode_interaction,
    interaction_from_json,
    parse_interaction,
    record_interaction,
    with_default_ids,
)
from shared.events import CHANNEL_TYPES, Interaction

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def valid(**overrides: Any) -> Interaction:
    raw: dict[str, Any] = {
        "channel": "email",
        "type": "open",
        "contact": {"email": "  Ada@Example.COM "},
    }
    raw.update(overrides)
    parsed = parse_interaction(raw)
    assert not isinstance(parsed, Rejected), parsed
    return parsed


def test_every_channel_has_its_documented_types() -> None:
    assert CHANNEL_TYPES == {
        "web": ("page_view", "form_submit", "content_download", "demo_request"),
        "email": (
            "open",
            "click",
            "reply",
            "unsubscribe",
            "bounce",
            "profile_update",
            "points_changed",
        ),
        "tradeshow": ("badge_scan", "booth_visit", "demo", "meeting"),
        "social": ("follow", "share", "mention", "comment", "message", "form_submit"),
    }


def test_email_is_normalised_and_is_the_identity() -> None:
    assert valid().contact.identity_key == "ada@example.com"


def test_anonymous_id_is_the_identity_without_an_email() -> None:
    assert valid(contact={"anonymous_id": "cookie-1"}).contact.identity_key == "cookie-1"


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"channel": "web", "type": "open", "contact": {"anonymous_id": "a"}}, "type"),
        ({"channel": "pigeon", "type": "open", "contact": {"anonymous_id": "a"}}, "channel"),
        ({"type": "open", "contact": {"anonymous_id": "a"}}, "channel"),
        ({"channel": "social", "type": "follow", "contact": {"anonymous_id": "a"}}, "properties"),
        ({"channel": "email", "type": "click", "contact": {"anonymous_id": "a"}}, "properties"),
        ({"channel": "email", "type": "open", "contact": {}}, "contact"),
        ({"channel": "email", "type": "open", "contact": {"email": "a@b"}}, "contact.email"),
        (
            {
                "channel": "email",
                "type": "open",
                "contact": {"anonymous_id": "a", "country": "Germany"},
            },
            "contact.country",
        ),
        (
            {
                "channel": "email",
                "type": "open",
                "contact": {"anonymous_id": "a"},
                "time": "2026-11-24T10:00:00",
            },
            "time",
        ),
        (
            {
                "channel": "email",
                "type": "open",
                "contact": {"email": "a@b.de", "last_name": "\x00"},
            },
            "contact.last_name",
        ),
        ("not an object", ""),
    ],
)
def test_invalid_interactions_name_the_field(raw: Any, field: str) -> None:
    outcome = parse_interaction(raw)
    assert isinstance(outcome, Rejected)
    assert outcome.status == 422
    assert field in {error.field for error in outcome.errors}


@pytest.mark.parametrize(
    "body",
    [
        b'{"channel": "email", "type": "open", "contact": {"email": " Ada@Example.COM"}}',
        b'{"id": "s-1", "channel": "web", "type": "page_view", "campaign": "spring",'
        b' "time": "2026-11-24T10:00:00+02:00", "contact": {"anonymous_id": "c-1",'
        b' "company_size": 250, "country": "de"}, "properties": {"url": "/p", "x": [1]}}',
        b'{"channel": "web", "type": "open", "contact": {"anonymous_id": "a"}}',
        b'[{"channel": "email", "type": "open", "contact": {"anonymous_id": "a"}}]',
    ],
)
def test_a_body_validated_from_its_bytes_is_the_decoded_body_validated(body: bytes) -> None:
    decoded = parse_interaction(json.loads(body))
    assert interaction_from_json(body) == (None if isinstance(decoded, Rejected) else decoded)


def test_a_body_that_is_not_json_holds_no_interaction() -> None:
    assert interaction_from_json(b'{"channel": "email",') is None


def test_keys_are_limited_to_their_channels() -> None:
    rejection = check_interaction(valid(), received_at=NOW, allowed_channels=["web"])
    assert rejection is not None
    assert rejection.status == 403
    assert check_interaction(valid(), received_at=NOW, allowed_channels=["email"]) is None
    assert check_interaction(valid(), received_at=NOW, allowed_channels=["*"]) is None


def test_event_time_may_not_be_far_in_the_future() -> None:
    slightly_ahead = valid(time=(NOW + timedelta(minutes=4)).isoformat())
    far_ahead = valid(time=(NOW + timedelta(minutes=6)).isoformat())
    assert check_interaction(slightly_ahead, received_at=NOW, allowed_channels=["*"]) is None
    rejection = check_interaction(far_ahead, received_at=NOW, allowed_channels=["*"])
    assert rejection is not None
    assert rejection.errors[0].field == "time"


def test_recorded_interaction_fills_id_and_time_and_builds_the_envelope() -> None:
    event = record_interaction(
        valid(campaign="spring"), source="/ingest/events", received_at=NOW, new_id=lambda: "e-1"
    )
    assert (event.id, event.time, event.subject) == ("e-1", NOW, "ada@example.com")
    assert event.type == "leadflow.interaction.email.open"
    assert event.data.id == "e-1"
    assert event.data.time == NOW
    assert event.specversion == "1.0"


def test_a_source_id_and_time_are_kept() -> None:
    past = NOW - timedelta(days=2)
    event = record_interaction(
        valid(id="src-9", time=past.isoformat()), source="s", received_at=NOW
    )
    assert (event.id, event.time) == ("src-9", past)


def test_webhook_items_without_id_get_one_derived_from_the_delivery() -> None:
    items = with_default_ids([{"a": 1}, {"id": "own"}, "junk"], "webhook:msg_1")
    assert items == [{"a": 1, "id": "webhook:msg_1:0"}, {"id": "own"}, "junk"]


@given(
    channel=st.sampled_from(sorted(CHANNEL_TYPES)),
    data=st.data(),
    email=st.emails(),
)
def test_every_channel_type_pair_round_trips_through_the_envelope(
    channel: str, data: st.DataObject, email: str
) -> None:
    kind = data.draw(st.sampled_from(CHANNEL_TYPES[channel]))
    properties = {
        "url": "https://example.com/x",
        "asset": "a.pdf",
        "network": "linkedin",
        "delta": 5,
    }
    if channel == "tradeshow":
        properties = {}
    outcome = parse_interaction(
        {"channel": channel, "type": kind, "contact": {"email": email}, "properties": properties}
    )
    if isinstance(outcome, Rejected):  # hypothesis emails include forms we deliberately refuse
        assert outcome.errors[0].field == "contact.email"
        return
    event = record_interaction(outcome, source="s", received_at=NOW)
    assert event.type == f"leadflow.interaction.{channel}.{kind}"
    assert type(event).model_validate_json(event.model_dump_json()) == event
    assert_encoded_as_recorded(outcome)


def assert_encoded_as_recorded(interaction: Interaction) -> None:
    """The published bytes are the JSON document of the recorded envelope."""
    recorded = record_interaction(interaction, source="s", received_at=NOW, new_id=lambda: "e-1")
    encoded = encode_interaction(interaction, source="s", received_at=NOW, new_id=lambda: "e-1")
    assert not isinstance(encoded, Rejected)
    assert json.loads(encoded.value) == json.loads(recorded.model_dump_json(exclude_none=True))
    assert (encoded.id, encoded.key) == (recorded.id, recorded.subject.encode())
    assert encoded.channel == recorded.data.channel


@pytest.mark.parametrize(
    "overrides",
    [
        {"id": "src-1", "time": "2026-11-24T10:00:00.25+02:00", "campaign": "spring"},
        {"time": "2026-11-24T10:00:00+00:00", "contact": {"anonymous_id": "c", "phone": "+1"}},
        {"channel": "email", "type": "points_changed", "properties": {"delta": 2.5, "n": None}},
        {"properties": {"beyond_64_bits": 2**70, "nested": {"a": [1, "é", None]}}},
    ],
)
def test_an_encoded_event_is_the_recorded_envelope(overrides: dict[str, Any]) -> None:
    assert_encoded_as_recorded(valid(**overrides))


def test_a_property_no_json_can_hold_is_rejected_by_name() -> None:
    unpaired = valid(properties={"note": "\ud800"})  # JSON may escape half a surrogate pair
    outcome = encode_interaction(unpaired, source="s", received_at=NOW)
    assert isinstance(outcome, Rejected)
    assert (outcome.status, outcome.errors[0].field) == (422, "properties")
