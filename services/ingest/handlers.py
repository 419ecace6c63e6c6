"""Ingest's service layer: validate submitted interactions, record them, publish the batch."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import AsyncIterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from services.ingest import metrics
from services.ingest.domain import (
    EncodedEvent,
    Rejected,
    check_interaction,
    encode_interaction,
    parse_interaction,
    record_interaction,
)
from services.ingest.publisher import Publisher
from services.ingest.tradeshow import BadgeFileReader, CsvRecord
from services.ingest.tradeshow_columns import (
    BadHeader,
    ColumnMapping,
    badge_scan_interaction,
    column_mapping,
    known_columns,
)
from shared.events import CHANNEL_TYPES, Interaction, InteractionFields, InteractionRecorded
from shared.problems import InvalidField

log = logging.getLogger(__name__)

IMPORT_BATCH_ROWS = 1_000
IMPORT_PROGRESS_EVERY = 10_000
MAX_REPORTED_REJECTIONS = 1_000
PREVIEW_ROWS = 5
IMPORT_SOURCE = "/ingest/imports/tradeshow"


class ItemResult(BaseModel):
    """What became of one submitted interaction: 202 accepted, else why not."""

    index: int
    status: int
    id: str | None = None
    errors: list[InvalidField] | None = None
    item: str | None = None  # a webhook item's place in the body: mautic.form_on_submit[1]


def _channel_label(raw: Any) -> str:
    if isinstance(raw, InteractionFields):
        return raw.channel_type[0]
    channel = raw.get("channel") if isinstance(raw, Mapping) else None
    return channel if isinstance(channel, str) and channel in CHANNEL_TYPES else "unknown"


def _acceptable(
    raw: Any, *, received_at: datetime, allowed_channels: Sequence[str]
) -> Interaction | Rejected:
    outcome = parse_interaction(raw)
    if isinstance(outcome, Rejected):
        return outcome
    rejection = check_interaction(
        outcome, received_at=received_at, allowed_channels=allowed_channels
    )
    return rejection or outcome


def vet_interaction(
    raw: Any, *, source: str, received_at: datetime, allowed_channels: Sequence[str]
) -> InteractionRecorded | Rejected:
    """One submitted interaction as it would be recorded, or why it would not be."""
    outcome = _acceptable(raw, received_at=received_at, allowed_channels=allowed_channels)
    if isinstance(outcome, Rejected):
        return outcome
    return record_interaction(outcome, source=source, received_at=received_at)


async def accept_interactions(
    raw_items: Sequence[Any],
    *,
    publisher: Publisher,
    source: str,
    allowed_channels: Sequence[str],
    received_at: datetime | None = None,
) -> list[ItemResult]:
    """Validate each item (decoded JSON, or an interaction validated already), publish the
    valid ones together, and answer per item.

    Raises `BrokerUnavailable` when the broker did not acknowledge: then nothing is
    reported as accepted.
    """
    received_at = received_at or datetime.now(UTC)
    results: list[ItemResult] = []
    encoded: list[EncodedEvent] = []
    for index, raw in enumerate(raw_items):
        outcome = _acceptable(raw, received_at=received_at, allowed_channels=allowed_channels)
        event = (
            outcome
            if isinstance(outcome, Rejected)
            else encode_interaction(outcome, source=source, received_at=received_at)
        )
        if isinstance(event, Rejected):
            metrics.EVENTS.labels(_channel_label(raw), "rejected").inc()
            results.append(ItemResult(index=index, status=event.status, errors=event.errors))
            continue
        encoded.append(event)
        results.append(ItemResult(index=index, status=202, id=event.id))
    if encoded:
        with metrics.PUBLISH_SECONDS.time():
            await publisher.publish(encoded)
        for channel, count in Counter(event.channel for event in encoded).items():
            metrics.EVENTS.labels(channel, "accepted").inc(count)
    return results


class RejectedRow(BaseModel):
    line: int
    errors: list[InvalidField]


class MappedColumn(BaseModel):
    column: str = Field(description="the column's name in the file's header")
    field: str = Field(description="what it holds: a field, `properties.<key>` or `ignore`")


class PreviewRow(BaseModel):
    line: int
    record: InteractionRecorded = Field(description="the row as it would be on the topic")


class ImportReport(BaseModel):
    """The outcome of a badge-scan file: the mapping of its columns, the counts, each
    rejected row's line and reasons, and on a dry run the first rows as they would be."""

    campaign: str
    dry_run: bool = Field(default=False, description="true: nothing was recorded")
    mapping: list[MappedColumn] = Field(default=[], description="each column's field")
    rows: int = 0
    accepted: int = Field(default=0, description="rows recorded (on a dry run: recordable)")
    rejected: int = 0
    rejected_rows: list[RejectedRow] = Field(
        default=[], description=f"the first {MAX_REPORTED_REJECTIONS:,} rejected rows"
    )
    preview: list[PreviewRow] = Field(
        default=[], description=f"dry run: the first {PREVIEW_ROWS} rows that would be recorded"
    )


# A row is either an interaction to vet or already known to be invalid.
_Row = dict[str, Any] | list[InvalidField]
# What became of a vetted row: recorded (dry run: as it would be), or why not.
_Outcome = InteractionRecorded | None | list[InvalidField]


@dataclass
class _BadgeScanImport:
    campaign: str
    publisher: Publisher
    allowed_channels: Sequence[str]
    dry_run: bool
    report: ImportReport
    pending: list[tuple[int, _Row]] = field(default_factory=list)

    async def add(self, record: CsvRecord, mapping: ColumnMapping) -> None:
        self.report.rows += 1
        if record.error:
            self.pending.append((record.line, [InvalidField(field="row", message=record.error)]))
        else:
            row = badge_scan_interaction(record.values, mapping, self.campaign)
            self.pending.append((record.line, row))
        if len(self.pending) >= IMPORT_BATCH_ROWS:
            await self.flush()
        if self.report.rows % IMPORT_PROGRESS_EVERY == 0:
            log.info(
                "tradeshow import progress",
                extra={
                    "campaign": self.campaign,
                    "rows": self.report.rows,
                    "accepted": self.report.accepted,
                    "rejected": self.report.rejected,
                },
            )

    async def flush(self) -> None:
        outcomes = iter(await self._vet([row for _, row in self.pending if isinstance(row, dict)]))
        for line, row in self.pending:
            outcome = row if isinstance(row, list) else next(outcomes)
            if isinstance(outcome, list):
                self._reject(line, outcome)
                continue
            self.report.accepted += 1
            if outcome is not None and len(self.report.preview) < PREVIEW_ROWS:
                self.report.preview.append(PreviewRow(line=line, record=outcome))
        self.pending.clear()

    async def _vet(self, interactions: list[dict[str, Any]]) -> list[_Outcome]:
        """Publish the valid ones (a dry run publishes nothing and keeps them instead)."""
        if self.dry_run:
            received_at = datetime.now(UTC)
            vetted = [
                vet_interaction(
                    interaction,
                    source=IMPORT_SOURCE,
                    received_at=received_at,
                    allowed_channels=self.allowed_channels,
                )
                for interaction in interactions
            ]
            return [v.errors if isinstance(v, Rejected) else v for v in vetted]
        if not interactions:
            return []
        results = await accept_interactions(
            interactions,
            publisher=self.publisher,
            source=IMPORT_SOURCE,
            allowed_channels=self.allowed_channels,
        )
        return [None if result.status == 202 else result.errors or [] for result in results]

    def _reject(self, line: int, errors: list[InvalidField]) -> None:
        self.report.rejected += 1
        if len(self.report.rejected_rows) < MAX_REPORTED_REJECTIONS:
            self.report.rejected_rows.append(RejectedRow(line=line, errors=errors))


async def _records(
    chunks: AsyncIterable[bytes], reader: BadgeFileReader
) -> AsyncIterable[CsvRecord]:
    async for chunk in chunks:
        for record in reader.feed(chunk):
            yield record
    for record in reader.finish():
        yield record


def _header_mapping(header: CsvRecord, column_map: Sequence[tuple[str, str]]) -> ColumnMapping:
    if header.error:
        raise BadHeader(f"the first line is {header.error}")
    return column_mapping(header.values, column_map)


async def import_badge_scans(
    chunks: AsyncIterable[bytes],
    *,
    campaign: str,
    publisher: Publisher,
    allowed_channels: Sequence[str],
    column_map: Sequence[tuple[str, str]] = (),
    dry_run: bool = False,
) -> ImportReport:
    """Stream a badge-scan file: rows are validated and published in batches as they arrive.

    A dry run publishes nothing: its report shows the first rows as they would be recorded.
    Raises `BadHeader` when the first line does not name the needed columns, `BadMap` when
    `column_map` names a column the file does not have.
    """
    report = ImportReport(campaign=campaign, dry_run=dry_run)
    run = _BadgeScanImport(campaign, publisher, allowed_channels, dry_run, report)
    reader = BadgeFileReader(lambda names: known_columns(names, column_map))
    mapping: ColumnMapping | None = None
    async for record in _records(chunks, reader):
        if mapping is None:
            mapping = _header_mapping(record, column_map)
            report.mapping = [
                MappedColumn(column=column, field=field)
                for column, field in zip(mapping.columns, mapping.fields, strict=True)
            ]
        else:
            await run.add(record, mapping)
    if mapping is None:
        raise BadHeader("the file is empty: its first line must name the columns")
    await run.flush()
    log.info(
        "tradeshow import finished",
        extra={
            "campaign": campaign,
            "dry_run": dry_run,
            "rows": report.rows,
            "accepted": report.accepted,
            "delimiter": reader.delimiter,
        },
    )
    return report
