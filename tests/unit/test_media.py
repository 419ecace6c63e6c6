"""Content negotiation and Content-Type parsing, shared by every service's routes."""

from __future__ import annotations

import pytest

from shared.media import body_media_type, preferred_media_type

pytestmark = pytest.mark.unit

OFFERED = ["application/json", "text/csv"]


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, "application/json"),
        ("", "application/json"),
        ("*/*", "application/json"),
        ("text/csv", "text/csv"),
        ("text/*", "text/csv"),
        ("text/csv, */*", "text/csv"),
        ("text/csv;q=0.5, application/json", "application/json"),
        ("application/json;q=0, */*", "text/csv"),
        ("TEXT/CSV", "text/csv"),
        ("image/png", None),
        ("text/csv;q=nonsense", None),
    ],
)
def test_the_caller_gets_the_type_it_ranks_highest(accept: str | None, chosen: str | None) -> None:
    assert preferred_media_type(accept, OFFERED) == chosen


@pytest.mark.parametrize(
    ("header", "media_type"),
    [
        ("application/json", "application/json"),
        ("Application/JSON; charset=utf-8", "application/json"),
        ('multipart/form-data; boundary="x"', "multipart/form-data"),
        (None, ""),
        ("", ""),
    ],
)
def test_a_body_media_type_drops_its_parameters(header: str | None, media_type: str) -> None:
    assert body_media_type(header) == media_type
