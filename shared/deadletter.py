"""Reading consumed records: what cannot be read becomes a dead letter with the reason."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiokafka import ConsumerRecord
from pydantic import BaseModel, ValidationError

from shared.consumer import log_epoch_of
from shared.events import DEAD_LETTER_TYPE, DeadLetter, DeadLetterRecorded
from shared.outbox import outbox_row
from shared.topics import INTERACTIONS_DLQ

EventT = TypeVar("EventT", bound=BaseModel)


def dead_letter(record: ConsumerRecord, reason: str, source: str) -> DeadLetterRecorded:
    """The record, whole, with why it could not be handled (its id is its position)."""
    return DeadLetterRecorded(
        id=f"dlq:{record.topic}:{record.partition}:{record.offset}",
        source=source,
        type=DEAD_LETTER_TYPE,
        time=datetime.now(UTC),
        subject=f"{record.topic}/{record.partition}/{record.offset}",
        data=DeadLetter(
            error=reason,
            source_topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            original_key=(record.key or b"").decode(errors="replace") or None,
            original_value_base64=base64.b64encode(record.value or b"").decode(),
        ),
    )


def read_records(
    records: Iterable[ConsumerRecord], model: type[EventT], *, expected: str, source: str
) -> tuple[list[EventT], list[DeadLetterRecorded]]:
    """Records parsed as `model`; partition markers skipped; the rest dead-lettered."""
    read: list[EventT] = []
    dead: list[DeadLetterRecorded] = []
    for record in records:
        try:
            read.append(model.model_validate_json(record.value or b""))
        except ValidationError as error:
            if log_epoch_of(record) is not None:
                continue  # a partition's marker, not an event
            first = error.errors()[0]
            where = ".".join(map(str, first["loc"]))
            dead.append(dead_letter(record, f"not {expected}: {first['msg']} at {where}", source))
    return read, dead


def dead_letter_rows(dead: Iterable[DeadLetterRecorded]) -> list[dict[str, Any]]:
    """Outbox rows that publish dead letters to the dead-letter topic."""
    return [outbox_row(letter, INTERACTIONS_DLQ.name, letter.data.original_key) for letter in dead]
