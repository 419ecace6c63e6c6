"""The file a request uploads: a raw `text/csv` body, or the `file` field of a form.

Both are streamed. A form (`curl -F file=@scans.csv`, an HTML upload form) is parsed by
python-multipart's streaming parser as it arrives, so its file is never held whole in
memory or spooled to disk, and its rows are recorded while the rest still arrives.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from shared.media import body_media_type
from shared.problems import InvalidField, ProblemError

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

CSV_MEDIA_TYPES = ("text/csv", "application/csv")
FORM_MEDIA_TYPE = "multipart/form-data"
FILE_FIELD = "file"


class _FormParts:
    """What the multipart parser reports: which part is the file, and the file's bytes."""

    def __init__(self) -> None:
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._disposition = b""
        self._in_file = False
        self.files = 0
        self.data: list[bytes] = []
        self.ended = False

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value_part,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        }

    def _part_begin(self) -> None:
        self._disposition = b""

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _header_value_part(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = bytes(self._header_value)
        self._header_name.clear()
        self._header_value.clear()

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        self._in_file = options.get(b"name") == FILE_FIELD.encode()
        self.files += self._in_file

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self.data.append(data[start:end])

    def _part_end(self) -> None:
        self._in_file = False

    def _end(self) -> None:
        self.ended = True


async def _form_file(chunks: AsyncIterator[bytes], boundary: bytes) -> AsyncIterator[bytes]:
    parts = _FormParts()
    try:
        parser = MultipartParser(boundary, parts.callbacks())
        async for chunk in chunks:
            parser.write(chunk)
            if parts.files > 1:
                message = "send one file per request"
                raise ProblemError(
                    422, message, errors=[InvalidField(field="file", message=message)]
                )
            if parts.data:
                yield b"".join(parts.data)
                parts.data.clear()
    except FormParserError as error:
        raise ProblemError(400, f"the body is not valid multipart/form-data: {error}") from error
    if not parts.ended:
        raise ProblemError(400, "the multipart/form-data body ends before its closing boundary")
    if not parts.files:
        message = f"is required: send the file as the form field named {FILE_FIELD}"
        raise ProblemError(422, "no file", errors=[InvalidField(field="file", message=message)])


def uploaded_file(request: Request) -> AsyncIterator[bytes]:
    """The uploaded file's bytes as they arrive; raises `ProblemError` (415, 400) when the
    request carries no file we can read, and yields one (422, 400) when its form has none."""
    content_type = request.headers.get("content-type")
    media_type = body_media_type(content_type)
    if media_type in CSV_MEDIA_TYPES:
        return request.stream()
    if media_type == FORM_MEDIA_TYPE:
        boundary = parse_options_header(content_type)[1].get(b"boundary")
        if not boundary:
            raise ProblemError(400, "a multipart/form-data body needs a boundary")
        return _form_file(request.stream(), boundary)
    raise ProblemError(
        415, f"send the file as text/csv or as the {FILE_FIELD} field of multipart/form-data"
    )
