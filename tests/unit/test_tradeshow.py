"""Badge-scan CSV parsing: records across chunk boundaries, quoted line breaks, mapping."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.ingest.tradeshow import (
    BadHeader,
    CsvRecord,
    RecordSplitter,
    badge_scan_interaction,
    column_positions,
)

pytestmark = pytest.mark.unit

FILE = (
    "Email,First_Name,scanned_at,notes,interaction\r\n"
    'grace@example.com,Grace,2026-11-20T10:00:00Z,"likes, commas",demo\r\n'
    "\r\n"
    'alan@example.com,Alan,2026-11-20 11:00,"two\nlines",\r\n'
    "ümlaut@example.com,Jürgen,2026-11-20T12:00:00+01:00,,booth_visit"
).encode()


def split(data: bytes, sizes: list[int]) -> list[tuple[int, list[str]]]:
    splitter = RecordSplitter()
    records = []
    position = 0
    for size in sizes:
        records += list(splitter.feed(data[position : position + size]))
        position += size
    records += list(splitter.feed(data[position:]))
    records += list(splitter.finish())
    return [(record.line, record.values) for record in records]


EXPECTED = [
    (1, ["Email", "First_Name", "scanned_at", "notes", "interaction"]),
    (2, ["grace@example.com", "Grace", "2026-11-20T10:00:00Z", "likes, commas", "demo"]),
    (4, ["alan@example.com", "Alan", "2026-11-20 11:00", "two\nlines", ""]),
    (6, ["ümlaut@example.com", "Jürgen", "2026-11-20T12:00:00+01:00", "", "booth_visit"]),
]


def test_records_keep_their_starting_line_and_quoted_line_breaks() -> None:
    assert split(FILE, []) == EXPECTED


@given(st.lists(st.integers(min_value=1, max_value=40), max_size=30))
def test_chunk_boundaries_do_not_change_the_records(sizes: list[int]) -> None:
    assert split(FILE, sizes) == EXPECTED


def test_header_needs_email_and_scanned_at() -> None:
    with pytest.raises(BadHeader, match="scanned_at"):
        column_positions(CsvRecord(1, ["email", "name"]))
    with pytest.raises(BadHeader, match="empty"):
        column_positions(None)
    header = CsvRecord(1, [" Email ", "SCANNED_AT", "extra"])
    assert column_positions(header) == {"email": 0, "scanned_at": 1}


def test_an_unreadable_record_is_reported_not_raised() -> None:
    assert split(b"email,scanned_at\na\rb,c\nok@example.com,x\n", []) == [
        (1, ["email", "scanned_at"]),
        (2, []),
        (3, ["ok@example.com", "x"]),
    ]
    splitter = RecordSplitter()
    [record] = [*splitter.feed(b"a\rb\n")]
    assert record.error is not None
    assert "new-line" in record.error


def test_a_row_becomes_a_tradeshow_interaction_with_a_stable_id() -> None:
    positions = column_positions(CsvRecord(1, EXPECTED[0][1]))
    first = badge_scan_interaction(EXPECTED[2][1], positions, "summit")
    assert first["channel"] == "tradeshow"
    assert first["type"] == "badge_scan"
    assert first["time"] == "2026-11-20T11:00:00+00:00"
    assert first["contact"] == {"email": "alan@example.com", "first_name": "Alan"}
    assert first["properties"] == {"notes": "two\nlines"}
    assert first["id"] == badge_scan_interaction(EXPECTED[2][1], positions, "summit")["id"]
    assert first["id"] != badge_scan_interaction(EXPECTED[2][1], positions, "other")["id"]


def test_an_unreadable_time_is_left_for_validation_to_reject() -> None:
    positions = {"email": 0, "scanned_at": 1}
    interaction = badge_scan_interaction(["a@example.com", "last tuesday"], positions, "s")
    assert interaction["time"] == "last tuesday"
