"""Media types of HTTP requests: what a body is, and which answer the caller prefers."""

from __future__ import annotations

from collections.abc import Sequence

from python_multipart.multipart import parse_options_header


def body_media_type(content_type: str | None) -> str:
    """The media type of a Content-Type header, lower case, without its parameters."""
    media_type, _ = parse_options_header(content_type or "")
    return media_type.decode("latin-1").strip().lower()


def preferred_media_type(accept: str | None, offered: Sequence[str]) -> str | None:
    """The offered type the Accept header ranks highest (RFC 9110 §12.5.1), the first
    offered when the caller sends none, None when it accepts none of them."""
    if not accept or not accept.strip():
        return offered[0]
    best: tuple[float, int, int] | None = None
    chosen: str | None = None
    ranges = [parse_options_header(part) for part in accept.split(",") if part.strip()]
    for position, candidate in enumerate(offered):
        quality = _quality(candidate, ranges)
        if quality is None or quality[0] <= 0:
            continue
        rank = (quality[0], quality[1], -position)
        if best is None or rank > best:
            best, chosen = rank, candidate
    return chosen


def _quality(
    candidate: str, ranges: list[tuple[bytes, dict[bytes, bytes]]]
) -> tuple[float, int] | None:
    """The q of the most specific range that matches `candidate`, with that specificity."""
    kind = candidate.partition("/")[0]
    found: tuple[float, int] | None = None
    for raw, options in ranges:
        media_range = raw.decode("latin-1").strip().lower()
        range_kind, _, range_subtype = media_range.partition("/")
        if media_range == candidate:
            specificity = 2
        elif range_kind == kind and range_subtype == "*":
            specificity = 1
        elif media_range == "*/*":
            specificity = 0
        else:
            continue
        try:
            quality = float(options.get(b"q", b"1"))
        except ValueError:
            quality = 0.0
        if found is None or specificity > found[1]:
            found = (quality, specificity)
    return found
