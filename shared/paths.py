"""Places in a document (a request body, a YAML file), as tuples and as the text people read."""

from __future__ import annotations

from collections.abc import Sequence

DocumentPath = tuple[str | int, ...]


def field_path(location: Sequence[int | str]) -> str:
    """`("body", "contact", "email")` -> `body.contact.email`; list indexes as `[3]`."""
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path
