"""Badge-scan files: reading exports as scanners write them, and their columns as fields."""

from __future__ import annotations

import codecs
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.ingest.tradeshow import BadgeFileReader, CsvRecord, sniff_delimiter, unguarded
from services.ingest.tradeshow_columns import (
    SYNONYMS,
    BadHeader,
    BadMap,
    ColumnMapping,
    badge_scan_interaction,
    column_mapping,
    country_code,
    known_columns,
    normalised,
    parse_column_map,
    parse_scan_time,
)
from shared.problems import InvalidField

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).parents[1] / "fixtures" / "tradeshow"

FILE = (
    "Email,First_Name,scanned_at,notes,interaction\r\n"
    'grace@example.com,Grace,2026-11-20T10:00:00Z,"likes, commas",demo\r\n'
    "\r\n"
    'alan@example.com,Alan,2026-11-20 11:00,"two\nlines",\r\n'
    ",,,,\n"
    "ümlaut@example.com,Jürgen,2026-11-20T12:00:00+01:00,,booth_visit"
)
EXPECTED = [
    (1, ["Email", "First_Name", "scanned_at", "notes", "interaction"]),
    (2, ["grace@example.com", "Grace", "2026-11-20T10:00:00Z", "likes, commas", "demo"]),
    (4, ["alan@example.com", "Alan", "2026-11-20 11:00", "two\nlines", ""]),
    (7, ["ümlaut@example.com", "Jürgen", "2026-11-20T12:00:00+01:00", "", "booth_visit"]),
]


def read(data: bytes, sizes: Sequence[int] = ()) -> list[tuple[int, list[str]]]:
    reader = BadgeFileReader(known_columns)
    records: list[CsvRecord] = []
    position = 0
    for size in sizes:
        records += reader.feed(data[position : position + size])
        position += size
    records += reader.feed(data[position:])
    records += reader.finish()
    return [(record.line, record.values) for record in records]


def test_records_keep_their_starting_line_and_quoted_line_breaks() -> None:
    assert read(FILE.encode()) == EXPECTED


@given(st.lists(st.integers(min_value=1, max_value=40), max_size=30))
def test_chunk_boundaries_do_not_change_the_records(sizes: list[int]) -> None:
    assert read(FILE.encode(), sizes) == EXPECTED


@given(
    st.sampled_from([",", ";", "\t"]),
    st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1252"]),
    st.lists(st.integers(min_value=1, max_value=30), max_size=20),
)
def test_encodings_and_delimiters_of_exports_read_the_same(
    delimiter: str, encoding: str, sizes: list[int]
) -> None:
    text = FILE.replace("ümlaut", "umlaut").replace(",", delimiter)
    text = text.replace(f"likes{delimiter} commas", "likes, commas")
    data = text.encode(encoding)
    expected = [
        (line, [value.replace("ümlaut", "umlaut") for value in values]) for line, values in EXPECTED
    ]
    assert read(data, sizes) == expected


def test_a_byte_order_mark_is_not_part_of_the_first_column() -> None:
    assert read(codecs.BOM_UTF8 + b"E-mail;Checked in\r\na@example.com;2024-10-24 09:14\r\n") == [
        (1, ["E-mail", "Checked in"]),
        (2, ["a@example.com", "2024-10-24 09:14"]),
    ]


def test_a_file_that_is_not_utf8_is_read_as_windows_1252() -> None:
    data = "E-mail;Name\nj@example.com;Jürgen Weiß\n".encode("cp1252")
    assert read(data)[1] == (2, ["j@example.com", "Jürgen Weiß"])


def test_the_delimiter_is_the_one_that_finds_known_columns() -> None:
    assert sniff_delimiter("Email;Name, first;Company", known_columns) == ";"
    assert sniff_delimiter("Email,Price (€; net),Company", known_columns) == ","
    assert sniff_delimiter("Email\tCountry", known_columns) == "\t"
    assert sniff_delimiter("Email", known_columns) == ","


@pytest.mark.parametrize(
    ("cell", "value"),
    [
        ('="0049 30 1234567"', "0049 30 1234567"),
        ('="say ""hi"""', 'say "hi"'),
        ("'+44 20 7946 0018", "+44 20 7946 0018"),
        ("'-", "-"),
        ("'=1\\|2", "=1|2"),
        ("'t Hooft", "'t Hooft"),
        ("  Ada  ", "Ada"),
        ("=", "="),
    ],
)
def test_spreadsheet_guards_are_removed(cell: str, value: str) -> None:
    assert unguarded(cell) == value


def test_an_unreadable_record_is_reported_and_later_lines_stay_right() -> None:
    reader = BadgeFileReader()
    records = reader.feed(b'email,note\na\rb,c\nok@example.com,"x\ny"\nlast@example.com,z\n')
    records += reader.finish()
    assert [(r.line, r.values, r.error is not None) for r in records] == [
        (1, ["email", "note"], False),
        (2, [], True),
        (3, ["ok@example.com", "x\ny"], False),
        (5, ["last@example.com", "z"], False),
    ]
    assert "new-line" in (records[1].error or "")


def test_a_header_with_a_bare_carriage_return_is_an_unreadable_record() -> None:
    reader = BadgeFileReader(known_columns)
    records = reader.feed(b"\r\x14hM\xc2\x80\r\n")  # schemathesis sent this as a file
    records += reader.finish()
    assert [(r.line, r.error is not None) for r in records] == [(1, True)]


def test_an_empty_file_has_no_records() -> None:
    assert read(b"") == []
    assert read(b"\r\n\r\n") == []


def test_synonyms_are_unambiguous() -> None:
    names = [normalised(name) for names in SYNONYMS.values() for name in names]
    assert len(names) == len(set(names))


def header_of(fixture: str) -> list[str]:
    return read((FIXTURES / fixture).read_bytes())[0][1]


def fields(mapping: ColumnMapping) -> dict[str, str]:
    return dict(zip(mapping.columns, mapping.fields, strict=True))


def test_the_columns_of_real_exports_are_recognised() -> None:
    assert fields(column_mapping(header_of("eventyay_leads.csv"))) == {
        "ID": "properties.id",
        "Exhibitor": "properties.exhibitor",
        "Pseudonymization ID": "properties.pseudonymization_id",
        "Scanned Date": "scan_date",
        "Scan Time": "scan_time",
        "Scan Type": "properties.scan_type",
        "Device Name": "properties.device_name",
        "Booth ID": "properties.booth_id",
        "Booth Name": "booth",
        "Attendee Name": "full_name",
        "Email": "email",
        "Note": "notes",
        "Tags": "properties.tags",
    }
    pretix = fields(column_mapping(header_of("pretix_checkin_list.csv")))
    assert pretix == fields(column_mapping(header_of("excel_de_bom_semicolon_guards.csv")))
    assert {column: pretix[column] for column in ("E-mail", "Checked in", "Phone number")} == {
        "E-mail": "email",
        "Checked in": "scanned_at",
        "Phone number": "phone",
    }
    assert pretix["Attendee name: Given name"] == "first_name"
    assert pretix["Order date"] == "properties.order_date"
    assert fields(column_mapping(header_of("validar_swapcard_leads.csv"))) == {
        "First Name": "first_name",
        "Last Name": "last_name",
        "Job Title": "job_title",
        "Company": "company",
        "Email Address": "email",
        "Country": "country",
    }
    talque = fields(column_mapping(header_of("talque_lead_list.csv")))
    assert (talque["Company Name"], talque["Job title"]) == ("company", "job_title")
    assert talque["Origin"] == "properties.origin"


def test_a_file_needs_an_email_column() -> None:
    with pytest.raises(BadHeader, match="email"):
        column_mapping(["name", "city"])


def test_a_lone_date_or_time_column_is_the_scan_time_and_one_scan_time_wins() -> None:
    assert fields(column_mapping(["Email", "Scan Date"]))["Scan Date"] == "scanned_at"
    assert fields(column_mapping(["Email", "Time"]))["Time"] == "scanned_at"
    both = fields(column_mapping(["Email", "Scanned at", "Date", "Time"]))
    assert both == {
        "Email": "email",
        "Scanned at": "scanned_at",
        "Date": "properties.date",
        "Time": "properties.time",
    }


def test_a_field_is_held_by_its_first_column_and_property_keys_stay_unique() -> None:
    mapping = fields(column_mapping(["Email", "E-mail", "Notes", "Note", "", "Tags", "TAGS"]))
    assert mapping == {
        "Email": "email",
        "E-mail": "properties.e_mail",
        "Notes": "notes",
        "Note": "properties.note",
        "": "properties.column_5",
        "Tags": "properties.tags",
        "TAGS": "properties.tags_2",
    }


def test_map_parameter_sets_fields_and_is_validated() -> None:
    pairs = parse_column_map("Attendee name: Given name:first_name, Mail:EMAIL,Lead score:ignore,")
    assert pairs == [
        ("Attendee name: Given name", "first_name"),
        ("Mail", "email"),
        ("Lead score", "ignore"),
    ]
    header = ["Attendee name: Given name", "Mail", "Email", "Lead score", "Source"]
    mapping = column_mapping(header, [*pairs, ("source", "properties.origin")])
    assert fields(mapping) == {
        "Attendee name: Given name": "first_name",
        "Mail": "email",
        "Email": "properties.email",
        "Lead score": "ignore",
        "Source": "properties.origin",
    }
    assert parse_column_map("") == []
    for bad, reason in [
        ("Mail:e-mail", "not a field"),
        ("Mail", "not Column:field"),
        (":email", "not Column:field"),
        ("A:email,B:email", "two columns"),
        ("Mail:email,mail:notes", "mapped twice"),
        ("X:properties.Bad Key", "not a field"),
    ]:
        with pytest.raises(ValueError, match=reason):
            parse_column_map(bad)
    with pytest.raises(BadMap, match="no column 'Nope'"):
        column_mapping(["Email"], [("Nope", "notes")])


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("2024-10-24 09:14", datetime(2024, 10, 24, 9, 14, tzinfo=UTC)),
        ("2024-10-24T09:14:03Z", datetime(2024, 10, 24, 9, 14, 3, tzinfo=UTC)),
        ("24.10.2024 09:14", datetime(2024, 10, 24, 9, 14, tzinfo=UTC)),
        ("4.1.2025", datetime(2025, 1, 4, tzinfo=UTC)),
        (
            "2024-10-24T09:14:00+02:00",
            datetime(2024, 10, 24, 9, 14, tzinfo=timezone(timedelta(hours=2))),
        ),
    ],
)
def test_scan_times_of_exports(text: str, moment: datetime) -> None:
    assert parse_scan_time(text) == moment


def test_country_names_and_codes() -> None:
    assert [country_code(name) for name in ("Germany", "United Kingdom", "UK", "gb", "FRA")] == [
        "DE",
        "GB",
        "GB",
        "GB",
        "FR",
    ]
    assert [country_code(name) for name in ("Deutschland", "Österreich", "Suisse")] == [
        "DE",
        "AT",
        "CH",
    ]
    assert country_code("Atlantis") is None
    assert country_code("XX") is None


EVENTYAY = column_mapping(["Scanned Date", "Scan Time", "Attendee Name", "Email", "Note", "Tags"])


def interaction_of(values: list[str], mapping: ColumnMapping, campaign: str = "s") -> Any:
    interaction = badge_scan_interaction(values, mapping, campaign)
    assert isinstance(interaction, dict), interaction
    return interaction


def rejection_of(values: list[str], mapping: ColumnMapping) -> InvalidField:
    rejection = badge_scan_interaction(values, mapping, "s")
    assert isinstance(rejection, list), rejection
    [error] = rejection
    return error


def test_a_row_becomes_a_tradeshow_interaction_with_a_stable_id() -> None:
    row = ["2024-10-24", "09:14:03", "Anna Schmidt", "Anna@Example.com", "call", "hot; demo"]
    interaction = interaction_of(row, EVENTYAY, "summit")
    assert interaction == {
        "id": interaction["id"],
        "channel": "tradeshow",
        "type": "badge_scan",
        "campaign": "summit",
        "time": "2024-10-24T09:14:03+00:00",
        "contact": {"email": "Anna@Example.com", "first_name": "Anna", "last_name": "Schmidt"},
        "properties": {"notes": "call", "tags": "hot; demo"},
    }
    assert interaction["id"] == interaction_of(row, EVENTYAY, "summit")["id"]
    assert interaction["id"] != interaction_of(row, EVENTYAY, "other")["id"]
    # the same scan in another export format is the same scan
    pretix = column_mapping(["E-mail", "Checked in", "Interaction"])
    same = interaction_of(["anna@example.com", "24.10.2024 09:14:03", ""], pretix, "summit")
    assert same["id"] == interaction["id"]


def test_a_row_needs_a_readable_scan_time_where_the_file_has_them() -> None:
    date_only = interaction_of(["2024-10-24", "", "Anna Schmidt", "anna@example.com"], EVENTYAY)
    assert date_only["time"] == "2024-10-24T00:00:00+00:00"
    assert rejection_of(["", "09:14", "A", "a@example.com"], EVENTYAY) == InvalidField(
        field="time", message="no scan time in 'Scanned Date + Scan Time'"
    )
    error = rejection_of(["a@example.com", "last tuesday"], column_mapping(["Email", "Checked in"]))
    assert error.field == "time"
    assert "'Checked in' holds 'last tuesday'" in error.message


def test_a_file_without_times_gives_each_person_one_scan_at_receipt() -> None:
    mapping = column_mapping(["Email Address", "Country", "Company size", "Interaction"])
    first = interaction_of(["a@example.com", "Germany", "1,200", "Booth Visit"], mapping)
    again = interaction_of(["A@example.com ", "DE", "1200", "booth visit"], mapping)
    assert "time" not in first
    assert first["id"] == again["id"]
    assert first["type"] == "booth_visit"
    assert first["contact"] == {"email": "a@example.com", "country": "DE", "company_size": 1200}
    odd = interaction_of(["b@example.com", "Atlantis", "51-200", ""], mapping)
    assert odd["type"] == "badge_scan"
    assert odd["contact"] == {"email": "b@example.com"}
    assert odd["properties"] == {"country": "Atlantis", "company_size": "51-200"}


def test_empty_and_placeholder_values_are_left_out() -> None:
    mapping = column_mapping(["Email", "Phone", "Name", "Job Title"])
    interaction = interaction_of(["a@example.com", "-", "Ada", ""], mapping)
    assert interaction["contact"] == {"email": "a@example.com", "first_name": "Ada"}
