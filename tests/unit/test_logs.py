"""Logs carry ids, never people: emails are hashed, personal fields dropped."""

from __future__ import annotations

import json
import logging

import pytest

from shared.logs import JsonFormatter, pseudonym, redact

pytestmark = pytest.mark.unit


def formatted(message: str, *args: object, **extra: object) -> dict[str, object]:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, message, args, None)
    record.__dict__.update(extra)
    result: dict[str, object] = json.loads(JsonFormatter().format(record))
    return result


def test_emails_in_messages_and_arguments_become_pseudonyms() -> None:
    entry = formatted("lead %s rejected", "Ada.Lovelace+x@Example.co.uk")
    assert "example" not in json.dumps(entry).lower()
    assert entry["message"] == f"lead {pseudonym('ada.lovelace+x@example.co.uk')} rejected"


def test_personal_fields_are_dropped_and_nested_emails_hashed() -> None:
    entry = formatted(
        "import",
        email="a@example.com",
        first_name="Ada",
        rows=3,
        detail={"phone": "+44", "owner": "b@example.com"},
    )
    assert "email" not in entry
    assert "first_name" not in entry
    assert entry["rows"] == 3
    assert entry["detail"] == {"owner": pseudonym("b@example.com")}


def test_exceptions_are_redacted_too() -> None:
    try:
        raise ValueError("bad contact c@example.com")
    except ValueError:
        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "boom", None, None)
        import sys

        record.exc_info = sys.exc_info()
    text = JsonFormatter().format(record)
    assert "c@example.com" not in text


def test_redact_leaves_ordinary_text_alone() -> None:
    assert redact("accepted 3 of 4 events at 10:00") == "accepted 3 of 4 events at 10:00"
