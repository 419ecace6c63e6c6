"""Ingest's service layer: validate submitted interactions, record them, publish the batch."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import AsyncIterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from services.ingest import metrics
from services.ingest.domain import (
    Rejected,
    check_interaction,
    parse_interaction,
    record_interaction,
)
from services.ingest.publisher import Publisher
from services.ingest.tradeshow import (
    CsvRecord,
    RecordSplitter,
    badge_scan_interaction,
    column_positions,
)
from shared.events import CHANNEL_TYPES, InteractionRecorded
from shared.problems import InvalidField

log = logging.getLogger(__name__)

IMPORT_BATCH_ROWS = 1_000
IMPORT_PROGRESS_EVERY = 10_000
MAX_REPORTED_REJECTIONS = 1_000


class ItemResult(BaseModel):
    """What became of one submitted interaction: 202 accepted, else why not."""

    index: int
    status: int
    id: str | None = None
    errors: list[InvalidField] | None = None


def _channel_label(raw: Any) -> str:
    channel = raw.get("channel") if isinstance(raw, Mapping) else None
    return channel if isinstance(channel, str) and channel in CHANNEL_TYPES else "unknown"


async def accept_interactions(
    raw_items: Sequence[Any],
    *,
    publisher: Publisher,
    source: str,
    allowed_channels: Sequence[str],
    received_at: datetime | None = None,
) -> list[ItemResult]:
    """Validate each item, publish the valid ones together, and answer per item.

    Raises `BrokerUnavailable` when the broker did not acknowledge: then nothing is
    reported as accepted.
    """
    received_at = received_at or datetime.now(UTC)
    results: list[ItemResult] = []
    recorded: list[InteractionRecorded] = []
    for index, raw in enumerate(raw_items):
        outcome = parse_interaction(raw)
        if not isinstance(outcome, Rejected):
            rejection = check_interaction(
                outcome, received_at=received_at, allowed_channels=allowed_channels
            )
            if rejection is None:
                event = record_interaction(outcome, source=source, received_at=received_at)
                recorded.append(event)
                results.append(ItemResult(index=index, status=202, id=event.id))
                continue
            outcome = rejection
        metrics.EVENTS.labels(_channel_label(raw), "rejected").inc()
        results.append(ItemResult(index=index, status=outcome.status, errors=outcome.errors))
    if recorded:
        with metrics.PUBLISH_SECONDS.time():
            await publisher.publish(recorded)
        for channel, count in Counter(event.data.channel for event in recorded).items():
            metrics.EVENTS.labels(channel, "accepted").inc(count)
    return results


class RejectedRow(BaseModel):
    line: int
    errors: list[InvalidField]


class ImportReport(BaseModel):
    """The outcome of a badge-scan file: counts, and each rejected row's line and reasons."""

    campaign: str
    rows: int = 0
    accepted: int = 0
    rejected: int = 0
    rejected_rows: list[RejectedRow] = []


@dataclass
class _BadgeScanImport:
    campaign: str
    publisher: Publisher
    allowed_channels: Sequence[str]
    report: ImportReport
    pending: list[tuple[int, dict[str, Any]]] = field(default_factory=list)

    async def add(self, record: CsvRecord, positions: dict[str, int]) -> None:
        self.report.rows += 1
        if record.error:
            self._reject(record.line, [InvalidField(field="row", message=record.error)])
        else:
            interaction = badge_scan_interaction(record.values, positions, self.campaign)
            self.pending.append((record.line, interaction))
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
        if not self.pending:
            return
        results = await accept_interactions(
            [interaction for _, interaction in self.pending],
            publisher=self.publisher,
            source="/ingest/imports/tradeshow",
            allowed_channels=self.allowed_channels,
        )
        for (line, _), result in zip(self.pending, results, strict=True):
            if result.status == 202:
                self.report.accepted += 1
            else:
                self._reject(line, result.errors or [])
        self.pending.clear()

    def _reject(self, line: int, errors: list[InvalidField]) -> None:
        self.report.rejected += 1
        if len(self.report.rejected_rows) < MAX_REPORTED_REJECTIONS:
            self.report.rejected_rows.append(RejectedRow(line=line, errors=errors))


async def _records(chunks: AsyncIterable[bytes]) -> AsyncIterable[CsvRecord]:
    splitter = RecordSplitter()
    async for chunk in chunks:
        for record in splitter.feed(chunk):
            yield record
    for record in splitter.finish():
        yield record


async def import_badge_scans(
    chunks: AsyncIterable[bytes],
    *,
    campaign: str,
    publisher: Publisher,
    allowed_channels: Sequence[str],
) -> ImportReport:
    """Stream a badge-scan CSV: rows are validated and published in batches as they arrive.

    Raises `BadHeader` when the first line does not name the needed columns.
    """
    run = _BadgeScanImport(campaign, publisher, allowed_channels, ImportReport(campaign=campaign))
    positions: dict[str, int] | None = None
    async for record in _records(chunks):
        if positions is None:
            positions = column_positions(record)
        else:
            await run.add(record, positions)
    if positions is None:
        column_positions(None)
    await run.flush()
    log.info(
        "tradeshow import finished",
        extra={"campaign": campaign, "rows": run.report.rows, "accepted": run.report.accepted},
    )
    return run.report
