"""Publishable keys: how they are configured, and what a page may send with one. Pure."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from services.ingest.browser import browser_rejection
from services.ingest.domain import Rejected, parse_interaction
from shared.events import Interaction
from shared.settings import PublishableKey, Settings, web_origin

pytestmark = pytest.mark.unit

SITE = PublishableKey(origins=["https://www.example.com"], campaigns=["q4-webinar"])


@pytest.mark.parametrize(
    ("configured", "sent_by_browsers"),
    [
        ("https://WWW.Example.com", "https://www.example.com"),
        ("https://www.example.com:443/", "https://www.example.com"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("http://[::1]:8000", "http://[::1]:8000"),
    ],
)
def test_origins_are_kept_as_browsers_send_them(configured: str, sent_by_browsers: str) -> None:
    assert web_origin(configured) == sent_by_browsers


@pytest.mark.parametrize(
    "origin", ["*", "null", "www.example.com", "https://www.example.com/shop", "ftp://example.com"]
)
def test_an_origin_is_a_scheme_a_host_and_a_port(origin: str) -> None:
    with pytest.raises(ValueError, match="is not an origin"):
        web_origin(origin)


def test_keys_default_to_page_views_and_form_submits_with_a_rate_limit() -> None:
    site = PublishableKey(origins=["https://www.example.com"])
    assert site.types == ["page_view", "form_submit"]
    assert site.campaigns == []
    assert site.rate_limit == "120/minute"


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"secret": {"origins": ["https://a.example"]}}, "must start with 'pk_'"),
        ({"pk_shared": {"origins": ["https://a.example"]}}, "not be an API key"),
        ({"pk_a": {"origins": []}}, "at least 1 item"),
        ({"pk_a": {"origins": ["https://a.example"], "types": ["demo_request"]}}, "page_view"),
        ({"pk_a": {"origins": ["https://a.example"], "rate_limit": "lots"}}, "rate limit"),
        ({"pk_a": {"origins": ["https://a.example"], "read": True}}, "Extra inputs"),
    ],
)
def test_a_misconfigured_key_stops_the_start(keys: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(
            _env_file=None,
            LEADFLOW_API_KEYS={"pk_shared": ["*"]},
            LEADFLOW_PUBLISHABLE_KEYS=keys,
        )


def sent(**overrides: Any) -> Interaction:
    raw: dict[str, Any] = {
        "id": "0b6f5c1e-3f1c-4a56-9d7e-2b1f7a0c9e11",
        "channel": "web",
        "type": "page_view",
        "contact": {"anonymous_id": "visitor-1"},
        "properties": {"url": "https://www.example.com/"},
    }
    raw.update(overrides)
    parsed = parse_interaction(raw)
    assert not isinstance(parsed, Rejected), parsed
    return parsed


def test_a_page_view_and_a_form_submit_of_a_visitor_are_what_a_page_may_send() -> None:
    assert browser_rejection(sent(), SITE) is None
    contact = {"anonymous_id": "visitor-1", "email": "ada@example.com", "company": "AE"}
    assert browser_rejection(sent(type="form_submit", contact=contact), SITE) is None
    assert browser_rejection(sent(type="form_submit", campaign="q4-webinar"), SITE) is None


@pytest.mark.parametrize(
    ("overrides", "status", "field"),
    [
        ({"type": "demo_request"}, 403, "type"),
        ({"channel": "social", "type": "follow", "properties": {"network": "x"}}, 403, "type"),
        ({"campaign": "demo-request"}, 403, "campaign"),
        ({"contact": {"email": "ada@example.com"}}, 422, "contact.anonymous_id"),
        ({"contact": {"anonymous_id": "v", "company": "AE"}}, 422, "contact"),
        ({"time": "2026-01-01T00:00:00Z"}, 422, "time"),
        ({"id": "mautic:form:1"}, 422, "id"),
    ],
)
def test_anything_else_is_refused_naming_the_field(
    overrides: dict[str, Any], status: int, field: str
) -> None:
    rejection = browser_rejection(sent(**overrides), SITE)
    assert rejection is not None
    assert rejection.status == status
    assert [error.field for error in rejection.errors] == [field]


def test_a_key_for_page_views_only_may_not_send_a_form() -> None:
    views_only = PublishableKey(origins=["https://www.example.com"], types=["page_view"])
    rejection = browser_rejection(sent(type="form_submit"), views_only)
    assert rejection is not None
    assert rejection.status == 403
