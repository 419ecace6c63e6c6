"""Tradeshow badge-scan files: CSV rows to interactions, read incrementally.

A file of badge scans can be large (tens of thousands of rows), so the parser takes the
body chunk by chunk and yields complete records with the line they started on.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

COLUMNS = (
    "email",
    "first_name",
    "last_name",
    "company",
    "job_title",
    "phone",
    "country",
    "scanned_at",
    "interaction",
    "notes",
)
REQUIRED_COLUMNS = ("email", "scanned_at")
CONTACT_COLUMNS = ("email", "first_name", "last_name", "company", "job_title", "phone", "country")
DEFAULT_INTERACTION = "badge_scan"


class BadHeader(ValueError):
    """The file's first line does not name the columns a badge-scan file needs."""


@dataclass(frozen=True)
class CsvRecord:
    """One CSV record and the line it starts on; `error` says why it could not be read."""

    line: int
    values: list[str]
    error: str | None = None


class RecordSplitter:
    """Splits a byte stream into CSV records, keeping quoted line breaks inside their field."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
        self._pending = ""
        self._record = ""
        self._record_line = 1
        self._line = 0

    def feed(self, chunk: bytes) -> Iterator[CsvRecord]:
        self._pending += self._decoder.decode(chunk)
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            yield from self._add_line(line)

    def finish(self) -> Iterator[CsvRecord]:
        self._pending += self._decoder.decode(b"", final=True)
        if self._pending:
            yield from self._add_line(self._pending)
            self._pending = ""
        if self._record:
            yield from self._complete()

    def _add_line(self, line: str) -> Iterator[CsvRecord]:
        self._line += 1
        if not self._record:
            self._record_line = self._line
            self._record = line
        else:
            self._record += "\n" + line
        # An odd number of quotes means a quoted field continues on the next line.
        if self._record.count('"') % 2 == 0:
            yield from self._complete()

    def _complete(self) -> Iterator[CsvRecord]:
        text, self._record = self._record.rstrip("\r"), ""
        if not text.strip():
            return
        try:
            yield CsvRecord(self._record_line, next(csv.reader([text]), []))
        except csv.Error as error:
            yield CsvRecord(self._record_line, [], error=f"not readable as CSV: {error}")


def column_positions(header: CsvRecord | None) -> dict[str, int]:
    """Where each known column is; unknown columns are ignored, required ones must exist."""
    if header is None:
        raise BadHeader("the file is empty: its first line must name the columns")
    if header.error:
        raise BadHeader(f"the first line is {header.error}")
    names = [name.strip().lower() for name in header.values]
    missing = [column for column in REQUIRED_COLUMNS if column not in names]
    if missing:
        raise BadHeader(f"the header must name the columns {', '.join(missing)}")
    return {name: names.index(name) for name in COLUMNS if name in names}


def parse_scanned_at(value: str) -> datetime:
    """Scanner exports use ISO 8601; a time without a zone is taken as UTC."""
    moment = datetime.fromisoformat(value.strip())
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def badge_scan_interaction(
    values: list[str], positions: dict[str, int], campaign: str
) -> dict[str, Any]:
    """One CSV row as a tradeshow interaction in the `POST /v1/events` shape.

    The id is derived from the campaign, person, time and kind of scan, so uploading the
    same file twice records each scan once.
    """
    row = {
        name: values[index].strip()
        for name, index in positions.items()
        if index < len(values) and values[index].strip()
    }
    kind = row.get("interaction", DEFAULT_INTERACTION)
    scanned_at = row.get("scanned_at", "")
    fingerprint = "|".join((campaign, row.get("email", "").lower(), scanned_at, kind))
    interaction: dict[str, Any] = {
        "id": "tradeshow:" + hashlib.sha256(fingerprint.encode()).hexdigest()[:32],
        "channel": "tradeshow",
        "type": kind,
        "campaign": campaign,
        "contact": {column: row[column] for column in CONTACT_COLUMNS if column in row},
        "properties": {"notes": row["notes"]} if "notes" in row else {},
    }
    if scanned_at:
        try:
            interaction["time"] = parse_scanned_at(scanned_at).isoformat()
        except ValueError:
            interaction["time"] = scanned_at  # left for validation to reject with its field
    return interaction
