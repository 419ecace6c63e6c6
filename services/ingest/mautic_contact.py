"""What a Mautic item says about the contact, in leadflow's contact fields; Mautic's dates.

Mautic serialises a contact with its fields grouped (`fields.core.company.value`); a form
submission also carries the submitted values by form field alias (`results`). Mautic has
no default field for company size: a contact field or form field with the alias
`company_size` (or `companysize`) is read, as a number or a range such as "51-200".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from services.ingest.tradeshow_columns import country_code

# Contact fields and the Mautic names (contact field or form field aliases) they come from.
CONTACT_SOURCES: dict[str, tuple[str, ...]] = {
    "email": ("email",),
    "first_name": ("firstname", "first_name"),
    "last_name": ("lastname", "last_name"),
    "company": ("company",),
    "job_title": ("position", "job_title"),
    "country": ("country",),
    "phone": ("phone", "mobile"),
    "company_size": ("company_size", "companysize"),
}

# A company's fields (`fields.<group>[alias].value`, or the flat `name`, `industry`).
COMPANY_SOURCES: dict[str, tuple[str, ...]] = {
    "company": ("companyname", "name"),
    "industry": ("companyindustry", "industry"),
    "company_size": ("companynumber_of_employees",),
}

# The lower bound of "250", "51-200", "1,000+", "10 000-50 000": at least that many.
_SIZE = re.compile(r"^\s*(\d{1,3}(?:[,. ]\d{3})+|\d+)\s*(?:[-\u2013+].*)?$")


def contact_fields(
    contact: Mapping[str, Any], submitted: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Contact fields from a Mautic contact, gaps filled from what was submitted alongside.

    A contact without an email is known by its Mautic id (`mautic:<id>`).
    """
    fields = _fields(CONTACT_SOURCES, contact, submitted or {})
    contact_id = text(contact.get("id"))
    if "email" not in fields and contact_id is not None:
        fields["anonymous_id"] = f"mautic:{contact_id}"
    return fields


def company_fields(company: Mapping[str, Any]) -> dict[str, Any]:
    """The contact fields a Mautic company gives: its name, industry and size."""
    return _fields(COMPANY_SOURCES, company, {})


def _fields(
    sources: Mapping[str, tuple[str, ...]], entity: Mapping[str, Any], submitted: Mapping[str, Any]
) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for field, names in sources.items():
        value = _first(_contact_value(entity, name) for name in names)
        if value is None:
            value = _first(text(submitted.get(name)) for name in names)
        if value is not None:
            converted = _CONVERSIONS.get(field, _unchanged)(value)
            if converted is not None:
                fields[field] = converted
    return fields


def _contact_value(contact: Mapping[str, Any], name: str) -> str | None:
    """A contact or company field: flat (`[name]`) or grouped (`fields.<group>[name].value`)."""
    flat = text(contact.get(name))
    if flat is not None:
        return flat
    groups = contact.get("fields")
    for group in groups.values() if isinstance(groups, Mapping) else ():
        field = group.get(name) if isinstance(group, Mapping) else None
        value = text(field.get("value")) if isinstance(field, Mapping) else text(field)
        if value is not None:
            return value
    return None


def _company_size(size: str) -> int | None:
    match = _SIZE.match(size)
    return int(re.sub(r"[,. ]", "", match.group(1))) if match else None


def _unchanged(value: str) -> str:
    return value


# Mautic stores countries by English name.
_CONVERSIONS: dict[str, Callable[[str], Any]] = {
    "country": country_code,
    "company_size": _company_size,
}


def first_time(*values: Any) -> str | None:
    """The first of Mautic's dates that parses, in UTC, ISO 8601."""
    for value in values:
        if parsed := _parse_time(value):
            return parsed.astimezone(UTC).isoformat()
    return None


def _parse_time(value: Any) -> datetime | None:
    """Mautic's ISO 8601 (`c`) or `YYYY-MM-DD HH:MM:SS` (UTC) dates; None otherwise."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def text(value: Any) -> str | None:
    """A non-empty trimmed string from a scalar Mautic value, else None."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    return str(value).strip() or None


def _first(values: Iterable[str | None]) -> str | None:
    return next((value for value in values if value is not None), None)
