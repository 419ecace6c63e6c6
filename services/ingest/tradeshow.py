"""Badge-scan files as scanners export them: bytes in, CSV records out, each with its line.

Lead-retrieval exports differ in encoding (a UTF-8 or UTF-16 byte-order mark, Excel's
Windows-1252), delimiter (`,`, `;` or tab) and spreadsheet guards (`="0049 30…"`,
`'+49 30…`). A file can be large, so the reader takes the body chunk by chunk. The stdlib
`csv` module parses; the reader only hands it complete lines and counts which lines each
record took, so a record is reported with the line it starts on even when a quoted field
holds line breaks or a record spans two chunks.
"""

from __future__ import annotations

import codecs
import csv
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

# Enough of the start of a file to tell its encoding by; the rest is decoded the same way.
ENCODING_SNIFF_BYTES = 64 * 1024
DELIMITERS = (",", ";", "\t")
# A leading `'` keeps a spreadsheet from reading these as a formula (defusedcsv, OWASP).
_GUARDED_STARTS = frozenset("=+-@|%\t\r")


@dataclass(frozen=True)
class CsvRecord:
    """One CSV record and the line it starts on; `error` says why it could not be read."""

    line: int
    values: list[str]
    error: str | None = None


def unguarded(value: str) -> str:
    """A cell as the person typed it: surrounding spaces and spreadsheet guards removed.

    Excel keeps `="0049 30 1234567"` as text (leading zeros intact); defusedcsv (pretix)
    writes `'` before a cell starting with `@ + - = | %` and escapes `|` in it as `\\|`.
    """
    value = value.strip()
    first = value[:1]
    if first == "=" and len(value) >= 3 and value[1] == '"' and value[-1] == '"':
        return value[2:-1].replace('""', '"').strip()
    if first == "'" and value[1:2] in _GUARDED_STARTS:
        return value[1:].replace("\\|", "|").strip()
    return value


def _decoder_for(head: bytes) -> codecs.IncrementalDecoder:
    """UTF-8 or UTF-16 by their byte-order mark; without one UTF-8, else Windows-1252."""
    if head.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    else:
        try:
            codecs.getincrementaldecoder("utf-8")().decode(head)  # a cut-off last char is fine
            encoding = "utf-8"
        except UnicodeDecodeError:
            encoding = "cp1252"  # what Excel on Windows writes as "CSV (comma delimited)"
    return codecs.getincrementaldecoder(encoding)(errors="replace")


class _NeedMore(Exception):
    """The csv reader asked for a line that has not arrived yet."""


class _Lines:
    """The lines the csv reader pulls, and the ones it took for the record being read."""

    def __init__(self) -> None:
        self.ready: deque[str] = deque()
        self.taken: list[str] = []
        self.complete = False

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if not self.ready:
            if self.complete:
                raise StopIteration
            raise _NeedMore
        line = self.ready.popleft()
        self.taken.append(line)
        return line

    def give_back(self) -> None:
        """Return the lines of an unfinished record, to be read again when more arrive."""
        self.ready.extendleft(reversed(self.taken))
        self.taken = []


def sniff_delimiter(header: str, known_columns: Callable[[list[str]], int]) -> str:
    """The delimiter that splits the header into the most known columns, then the most
    columns; a comma when nothing tells them apart."""

    def score(delimiter: str) -> tuple[int, int]:
        try:
            names = next(csv.reader([header], delimiter=delimiter), [])
        except csv.Error:  # e.g. a bare carriage return inside: the rows will say so
            return 0, 0
        return known_columns(names), len(names)

    return max(DELIMITERS, key=score)


class BadgeFileReader:
    """Splits a badge-scan file, fed as bytes in chunks of any size, into CSV records.

    Blank records (empty lines, or only delimiters) are skipped; values come unguarded.
    `known_columns` counts the names of a candidate header that leadflow recognises; it
    decides the delimiter.
    """

    def __init__(self, known_columns: Callable[[list[str]], int] = lambda names: 0) -> None:
        self._known_columns = known_columns
        self._head = b""
        self._decoder: codecs.IncrementalDecoder | None = None
        self._partial: list[str] = []  # text after the last line break
        self._lines = _Lines()
        self._reader: Iterator[list[str]] | None = None
        self._lines_read = 0
        self.delimiter: str | None = None

    def feed(self, chunk: bytes) -> list[CsvRecord]:
        if self._decoder is None:
            self._head += chunk
            if len(self._head) < ENCODING_SNIFF_BYTES:
                return []
            chunk, self._head = self._head, b""
            self._decoder = _decoder_for(chunk)
        self._add_text(self._decoder.decode(chunk))
        return self._records()

    def finish(self) -> list[CsvRecord]:
        if self._decoder is None:
            self._decoder = _decoder_for(self._head)
        self._add_text(self._decoder.decode(self._head, final=True))
        self._head = b""
        if self._partial:
            self._lines.ready.append("".join(self._partial))
            self._partial = []
        self._lines.complete = True
        return self._records()

    def _add_text(self, text: str) -> None:
        start = 0
        while (end := text.find("\n", start)) != -1:
            self._lines.ready.append("".join([*self._partial, text[start : end + 1]]))
            self._partial = []
            start = end + 1
        if start < len(text):
            self._partial.append(text[start:])

    def _start_reading(self) -> Iterator[list[str]] | None:
        header = next((line for line in self._lines.ready if line.strip()), None)
        if header is None and not self._lines.complete:
            return None
        self.delimiter = sniff_delimiter(header or "", self._known_columns)
        return csv.reader(self._lines, delimiter=self.delimiter, strict=False)

    def _records(self) -> list[CsvRecord]:
        if self._reader is None:
            self._reader = self._start_reading()
            if self._reader is None:
                return []
        records = []
        while True:
            self._lines.taken = []
            error = None
            try:
                values = next(self._reader)
            except _NeedMore:
                self._lines.give_back()
                break
            except StopIteration:
                break
            except csv.Error as problem:
                values, error = [], f"not readable as CSV: {problem}"
            line = self._lines_read + 1
            self._lines_read += len(self._lines.taken)
            if error:
                records.append(CsvRecord(line, [], error))
            elif "".join(values).strip():
                records.append(CsvRecord(line, [unguarded(value) for value in values]))
        return records
