"""Which column of a scanner's export holds what, and one row as a tradeshow interaction.

Exports name their columns in their own words ("E-mail", "Email Address", "Checked in",
"Scanned Date" and "Scan Time"), compared ignoring case, spaces and punctuation. Columns
leadflow does not know become the interaction's properties. `?map=Column:field` names a
column's field where the words do not tell.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache, cached_property
from importlib import resources
from typing import Any

from shared.events import normalise_email
from shared.problems import InvalidField

DEFAULT_INTERACTION = "badge_scan"
IGNORE = "ignore"
PROPERTIES = "properties."
# The fields a column can hold, and the column names exports are known to use for each.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "email": ("e-mail", "email address", "mail", "attendee email"),
    "first_name": ("first name", "given name", "forename", "attendee name: given name", "vorname"),
    "last_name": ("last name", "surname", "family name", "attendee name: family name", "nachname"),
    "full_name": ("name", "full name", "attendee name", "attendee", "contact name", "lead name"),
    "company": ("company", "company name", "organisation", "organization", "firma", "unternehmen"),
    "job_title": ("job title", "position", "job", "role", "job position", "funktion"),
    "industry": ("industry", "sector", "branche"),
    "company_size": ("company size", "employees", "number of employees"),
    "phone": ("phone", "phone number", "telephone", "mobile", "mobile phone", "tel", "telefon"),
    "country": ("country", "country/region", "country code", "land"),
    "scanned_at": ("scanned at", "scanned", "scanned on", "scan timestamp", "checked in"),
    "scan_date": ("scan date", "scanned date", "date scanned", "date", "check-in date"),
    "scan_time": ("scan time", "time scanned", "time", "check-in time"),
    "interaction": ("interaction", "interaction type"),
    "notes": ("notes", "note", "comment", "comments", "remarks"),
    "show": ("show", "event", "event name"),
    "booth": ("booth", "booth name", "stand"),
}
CONTACT_FIELDS = ("email", "first_name", "last_name", "company", "job_title", "industry", "phone")
PROPERTY_FIELDS = ("notes", "show", "booth")
_DOTTED_DATE = re.compile(
    r"(?P<day>\d{1,2})\.(?P<month>\d{1,2})\.(?P<year>\d{4})"
    r"(?:[ T,]+(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2}))?)?"
)
_HEADCOUNT = re.compile(r"\d{1,3}(?:[ ,.'\u2019]\d{3})+|\d+")
# What exports write for "no answer" (pretix writes a `-` answer as `'-`).
_NO_VALUE = frozenset({"", "-"})
_PROPERTY_KEY = re.compile(r"[a-z0-9_]{1,64}")


class BadHeader(ValueError):
    """The file's first line does not name the columns a badge-scan file needs."""


class BadMap(ValueError):
    """`?map=` asks for something this file or leadflow does not have."""


def normalised(name: str) -> str:
    """`E-Mail Address ` -> `emailaddress`: only letters and digits, case folded."""
    return "".join(
        char for char in unicodedata.normalize("NFKC", name).casefold() if char.isalnum()
    )


_FIELD_OF_NAME = {normalised(name): field for field, names in SYNONYMS.items() for name in names}


def parse_column_map(text: str) -> list[tuple[str, str]]:
    """`Column:field,Other:properties.key` as (column, field) pairs; `ValueError` says why not.

    A column name may hold `:` (the last one separates the field), not `,`.
    """
    pairs: list[tuple[str, str]] = []
    for item in filter(str.strip, text.split(",")):
        column, colon, field = item.rpartition(":")
        column, field = column.strip(), field.strip().lower()
        if not colon or not column:
            raise ValueError(f"{item.strip()!r} is not Column:field")
        known = field in SYNONYMS or field == IGNORE
        key = field.removeprefix(PROPERTIES)
        if not known and not (field.startswith(PROPERTIES) and _PROPERTY_KEY.fullmatch(key)):
            raise ValueError(
                f"{field!r} (for column {column!r}) is not a field: use one of "
                f"{', '.join(SYNONYMS)}, properties.<key> (a-z, 0-9, _) or {IGNORE}"
            )
        if any(normalised(column) == normalised(seen) for seen, _ in pairs):
            raise ValueError(f"column {column!r} is mapped twice")
        if field != IGNORE and any(target == field for _, target in pairs):
            raise ValueError(f"field {field!r} is given to two columns")
        pairs.append((column, field))
    return pairs


def known_columns(names: Iterable[str], column_map: Sequence[tuple[str, str]] = ()) -> int:
    """How many of `names` leadflow recognises (or `column_map` names)."""
    mapped = {normalised(column) for column, _ in column_map}
    return sum(
        1 for name in names if normalised(name) in _FIELD_OF_NAME or normalised(name) in mapped
    )


@dataclass(frozen=True)
class ColumnMapping:
    """The file's columns, and for each the field it holds (`properties.<key>`, `ignore`)."""

    columns: tuple[str, ...]
    fields: tuple[str, ...]

    def column_of(self, field: str) -> str | None:
        return next((c for c, f in zip(self.columns, self.fields, strict=True) if f == field), None)

    @cached_property
    def property_keys(self) -> dict[str, str]:
        """The fields kept as properties, each with its key there."""
        return {
            field: field.removeprefix(PROPERTIES)
            for field in self.fields
            if field.startswith(PROPERTIES) or field in PROPERTY_FIELDS
        }


def _property_key(column: str, index: int, taken: set[str]) -> str:
    base = re.sub(r"_+", "_", re.sub(r"\W", "_", column.strip().casefold())).strip("_")
    base = (base or f"column_{index + 1}")[:60]
    key, suffix = base, 1
    while key in taken:
        suffix += 1
        key = f"{base}_{suffix}"
    taken.add(key)
    return PROPERTIES + key


def column_mapping(
    header: Sequence[str], column_map: Sequence[tuple[str, str]] = ()
) -> ColumnMapping:
    """Each column's field: `column_map` first, then the known names, the rest as properties.

    A field is held by one column (the first); a lone date or time column is the scan
    time. Raises `BadMap` for a mapped column the header lacks, `BadHeader` when no column
    holds the email address.
    """
    names = [normalised(column) for column in header]
    fields: list[str | None] = [None] * len(header)
    for column, field in column_map:
        if normalised(column) not in names:
            raise BadMap(f"the file has no column {column!r}; its columns are {list(header)}")
        fields[names.index(normalised(column))] = field
    for index, name in enumerate(names):
        known = _FIELD_OF_NAME.get(name)
        if fields[index] is None and known is not None and known not in fields:
            fields[index] = known
    if "scanned_at" not in fields and (("scan_date" in fields) != ("scan_time" in fields)):
        lone = fields.index("scan_date" if "scan_date" in fields else "scan_time")
        fields[lone] = "scanned_at"
    if "scanned_at" in fields:  # one scan time: a separate date or time is kept as it is
        fields = [None if field in ("scan_date", "scan_time") else field for field in fields]
    if "email" not in fields:
        raise BadHeader(
            "no column holds the email address: name it Email, E-mail or Email Address, "
            "or map it with ?map=Column:email"
        )
    taken = {field.removeprefix(PROPERTIES) for field in fields if field and PROPERTIES in field}
    taken |= {*PROPERTY_FIELDS, "country", "company_size"}  # fields that can end up there
    return ColumnMapping(
        tuple(header),
        tuple(field or _property_key(header[i], i, taken) for i, field in enumerate(fields)),
    )


@cache
def _country_names() -> dict[str, str]:
    text = resources.files("services.ingest").joinpath("country_names.json").read_text("utf-8")
    names: dict[str, str] = json.loads(text)["names"]
    return names


@cache
def _country_codes() -> frozenset[str]:
    return frozenset(_country_names().values())


def country_code(value: str) -> str | None:
    """An ISO 3166-1 alpha-2 code for a code, alpha-3 code or country name; else None."""
    upper = value.strip().upper()
    if len(upper) == 2 and upper in _country_codes():
        return upper
    return _country_names().get(normalised(value))


def parse_scan_time(value: str) -> datetime:
    """ISO 8601, or the day-first `24.10.2024 09:14` of German-locale spreadsheets; a time
    without a zone is UTC. Raises `ValueError`."""
    if match := _DOTTED_DATE.fullmatch(value.strip()):
        day, month, year, hour, minute, second = (int(part or 0) for part in match.groups())
        moment = datetime(year, month, day, hour, minute, second)
    else:
        moment = datetime.fromisoformat(value.strip())
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _name_parts(full_name: str) -> dict[str, str]:
    first, _, last = full_name.strip().partition(" ")
    return {"first_name": first, **({"last_name": last.strip()} if last.strip() else {})}


def _scan_time(cells: dict[str, str], mapping: ColumnMapping) -> datetime | InvalidField | None:
    """When the row's scan happened; None when the file has no time at all."""
    if "scanned_at" in mapping.fields:
        value = cells.get("scanned_at", "")
    elif "scan_date" in mapping.fields:
        value = f"{cells['scan_date']} {cells.get('scan_time', '')}" if "scan_date" in cells else ""
    else:
        return None
    try:
        return parse_scan_time(value)
    except ValueError:
        column = mapping.column_of("scanned_at") or (
            f"{mapping.column_of('scan_date')} + {mapping.column_of('scan_time')}"
        )
        message = f"{column!r} holds {value.strip()!r}: use 2024-10-24 09:14 or 24.10.2024 09:14"
        if not value.strip():
            message = f"no scan time in {column!r}"
        return InvalidField(field="time", message=message)


def badge_scan_interaction(
    values: Sequence[str], mapping: ColumnMapping, campaign: str
) -> dict[str, Any] | list[InvalidField]:
    """One row as a tradeshow interaction in the `POST /v1/events` shape, or why it is none.

    The id is derived from the campaign, person, scan time and kind of scan, so uploading
    the same file twice, or the same scans in another export format, records each once.
    A country or company size that is not one (`Germany` is DE, `51-200` is no number)
    is kept as a property instead.
    """
    cells = {
        field: value
        for field, value in zip(mapping.fields, values, strict=False)
        if value not in _NO_VALUE and field != IGNORE
    }
    scanned_at = _scan_time(cells, mapping)
    if isinstance(scanned_at, InvalidField):
        return [scanned_at]
    contact: dict[str, Any] = {field: cells[field] for field in CONTACT_FIELDS if field in cells}
    if "full_name" in cells and not {"first_name", "last_name"} & cells.keys():
        contact |= _name_parts(cells["full_name"])
    keys = mapping.property_keys
    properties: dict[str, Any] = {keys[f]: value for f, value in cells.items() if f in keys}
    if "country" in cells:
        if code := country_code(cells["country"]):
            contact["country"] = code
        else:
            properties["country"] = cells["country"]
    if "company_size" in cells:
        size = cells["company_size"]
        if _HEADCOUNT.fullmatch(size) and int(re.sub(r"\D", "", size)) > 0:
            contact["company_size"] = int(re.sub(r"\D", "", size))
        else:
            properties["company_size"] = size
    kind = re.sub(r"[\s-]+", "_", cells.get("interaction", DEFAULT_INTERACTION).casefold())
    moment = scanned_at.astimezone(UTC).isoformat() if scanned_at else ""
    email = normalise_email(cells.get("email", ""))
    fingerprint = "|".join((campaign, email, moment, kind))
    interaction: dict[str, Any] = {
        "id": "tradeshow:" + hashlib.sha256(fingerprint.encode()).hexdigest()[:32],
        "channel": "tradeshow",
        "type": kind,
        "campaign": campaign,
        "contact": contact,
        "properties": properties,
    }
    if scanned_at:
        interaction["time"] = scanned_at.isoformat()
    return interaction
