"""Structured JSON logging that never writes personal data.

Every record passes a redaction step: email addresses anywhere in the message or its
fields are replaced by a short hash, and fields named after personal data are dropped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

_EMAIL_ANYWHERE = re.compile(r"[^@\s\"'<>,;:()\[\]]+@[^@\s\"'<>,;:()\[\]]+\.[A-Za-z]{2,}")
PERSONAL_FIELDS = frozenset(
    {"email", "first_name", "last_name", "name", "phone", "contact", "full_name"}
)
_STANDARD_ATTRIBUTES = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "color_message"}
)


def pseudonym(value: str) -> str:
    """A stable, non-reversible tag for a personal value, so logs can correlate without it."""
    return "pii:" + hashlib.sha256(value.encode()).hexdigest()[:12]


def redact(text: str) -> str:
    return _EMAIL_ANYWHERE.sub(lambda match: pseudonym(match.group(0).lower()), text)


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {
            key: _redact_value(item) for key, item in value.items() if key not in PERSONAL_FIELDS
        }
    if isinstance(value, list | tuple):
        return [_redact_value(item) for item in value]
    return value


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the record's extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRIBUTES and key not in PERSONAL_FIELDS:
                entry[key] = _redact_value(value)
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


def configure_logging(level: str = "INFO") -> None:
    """Route every logger (uvicorn's included) through the redacting JSON formatter."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "aiokafka"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    # httpx logs every request's URL at INFO: a chat webhook's URL is its secret.
    logging.getLogger("httpx").setLevel(logging.WARNING)
