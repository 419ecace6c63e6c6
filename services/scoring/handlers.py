"""Scoring's service layer: apply a batch of interactions (or due timers) in one transaction."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.scoring import metrics, repository
from services.scoring.domain import (
    Evaluation,
    FunnelChanges,
    Return,
    ScoringModel,
    StageReached,
    StoredInteraction,
    ThresholdChange,
    evaluate,
    lifecycle_changes,
    report_arrivals,
    score_as_of,
    seconds_until_below,
)
from services.scoring.identity import identity_keys, resolve_identities
from services.scoring.tables import consumer_offsets, decay_timers, outbox
from shared.consumer import Batch, save_positions
from shared.deadletter import dead_letter_rows, read_records
from shared.definitions import LoadedDefinitions
from shared.events import (
    InteractionRecorded,
    LeadProfile,
    LeadStageChanged,
    LifecycleRecorded,
    NurtureRecorded,
    ScoreThresholdCrossed,
    lifecycle_type,
)
from shared.failpoints import failpoint
from shared.outbox import add_to_outbox, outbox_row
from shared.plumbing import claim_due
from shared.topics import LIFECYCLE, NURTURE

log = logging.getLogger(__name__)

CONSUMER_GROUP = "leadflow-scoring"
SOURCE = "/scoring"
STAGE_ENTRIES = uuid.UUID("5f1c3a52-9b8e-4d47-a7c1-2e6f0b9d4a10")


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _lead_profile(
    known: Mapping[str, Any], campaigns: tuple[str, ...], source_channel: str | None
) -> LeadProfile:
    return LeadProfile(
        email=known.get("email"),
        company=known.get("company"),
        job_title=known.get("job_title"),
        industry=known.get("industry"),
        company_size=known.get("company_size"),
        country=known.get("country"),
        campaigns=campaigns,
        source_channel=source_channel,
    )


def _return_row(event: NurtureRecorded) -> dict[str, Any]:
    returned = event.data
    return {
        "event_id": event.id,
        "lead_id": returned.lead_id,
        "returned_at": returned.returned_at,
        "stage": returned.stage,
        "resets_score": returned.action == "reset_score",
        "eligible_again_at": returned.eligible_again_at,
    }


def _interaction_row(event: InteractionRecorded, lead_id: str) -> dict[str, Any]:
    data = event.data
    properties = data.properties
    profile = data.contact.model_dump(exclude_none=True, exclude={"anonymous_id"})
    return {
        "event_id": event.id,
        "lead_id": lead_id,
        "event_time": event.time,
        "channel": data.channel,
        "type": data.type,
        "campaign": data.campaign,
        "url": getattr(properties, "url", None),
        "asset": getattr(properties, "asset", None),
        "network": getattr(properties, "network", None),
        "profile": json.dumps(profile) if profile else None,
    }


@dataclass
class ScoringService:
    """Applies interactions to leads under one version of the lead definitions."""

    engine: AsyncEngine
    loaded: LoadedDefinitions
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    on_committed: Callable[[], None] = field(default=lambda: None)
    model: ScoringModel = field(init=False)

    def __post_init__(self) -> None:
        self.model = ScoringModel(self.loaded.definitions)

    async def handle_interactions(self, batch: Batch) -> None:
        """Store unseen interactions and returns from sales, re-score their leads, queue what
        changed: one transaction with the consumed offsets."""
        recorded, dead = read_records(
            (r for r in batch.records if r.topic != NURTURE.name),
            InteractionRecorded,
            expected="an interaction",
            source=SOURCE,
        )
        returned, unreadable = read_records(
            (r for r in batch.records if r.topic == NURTURE.name),
            NurtureRecorded,
            expected="a return to nurture",
            source=SOURCE,
        )
        dead += unreadable
        started = time.perf_counter()
        async with self.engine.begin() as connection:
            await self._apply(connection, recorded, [_return_row(event) for event in returned])
            await add_to_outbox(connection, outbox, dead_letter_rows(dead))
            await save_positions(connection, consumer_offsets, CONSUMER_GROUP, batch)
        failpoint("scoring.after_commit")
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        metrics.RECORDS.labels("interaction").inc(len(recorded))
        metrics.RECORDS.labels("dead_letter").inc(len(dead))
        if dead:
            log.warning("dead-lettered records", extra={"count": len(dead)})
        self.on_committed()

    async def _apply(
        self,
        connection: AsyncConnection,
        recorded: Sequence[InteractionRecorded],
        returned: Sequence[dict[str, Any]],
    ) -> None:
        sent_back = await repository.add_returns(connection, returned)
        if not recorded:
            await self.reevaluate(connection, sent_back)
            return
        keys = [identity_keys(e.data.contact.email, e.data.contact.anonymous_id) for e in recorded]
        await repository.lock_identities(connection, (key for group in keys for key in group))
        known = await repository.known_identities(
            connection, (key for group in keys for key in group)
        )
        resolution = resolve_identities(known, keys, lambda: str(uuid.uuid4()))
        await repository.merge_leads(connection, resolution.merged_into)
        await repository.add_leads(connection, resolution.new_leads)
        await repository.add_identities(connection, resolution.new_identities)
        new = await repository.add_interactions(
            connection,
            [
                _interaction_row(event, lead)
                for event, lead in zip(recorded, resolution.lead_of, strict=True)
            ],
        )
        arrivals: dict[str, list[str]] = {}
        for event, lead in zip(recorded, resolution.lead_of, strict=True):
            if event.id in new:
                arrivals.setdefault(lead, []).append(event.id)
        affected = set(arrivals) | set(resolution.merged_into.values()) | sent_back
        await self.reevaluate(connection, affected, arrivals=arrivals)

    async def reevaluate(
        self,
        connection: AsyncConnection,
        lead_ids: set[str],
        *,
        arrivals: Mapping[str, Sequence[str]] | None = None,
        rescoring: bool = False,
    ) -> int:
        """Score these leads afresh from their stored history (`arrivals`: the interactions
        each just received, in arrival order); queue the events that result."""
        if not lead_ids:
            return 0
        now = self.clock()
        stored = await repository.stored_leads(connection, lead_ids)
        histories = await repository.histories(connection, lead_ids)
        returns = await repository.returns_of(connection, lead_ids)
        rows, events, timers = [], [], {}
        for lead_id in lead_ids:
            history = histories.get(lead_id, [])
            arrived = (arrivals or {}).get(lead_id, ())
            previous = stored.get(lead_id)
            lead_returns = returns.get(lead_id, ())
            if rescoring:
                evaluation = evaluate(
                    self.model, history, score_as_of(now.timestamp(), history), returns=lead_returns
                )
                changes = lifecycle_changes(
                    self.model,
                    evaluation,
                    frozenset(),
                    previous.stage if previous else None,
                    previous.thresholds_met if previous else frozenset(),
                    rescoring=True,
                )
            else:
                evaluation, changes = report_arrivals(
                    self.model,
                    history,
                    arrived,
                    now.timestamp(),
                    returns=lead_returns,
                    reported=self._reported_before(previous, history, arrived, lead_returns, now),
                    previous_stage=previous.stage if previous else None,
                    previous_thresholds=previous.thresholds_met if previous else frozenset(),
                )
            events += [self._stage_event(lead_id, reached) for reached in changes.stages]
            events += [self._crossing_event(lead_id, change, now) for change in changes.crossings]
            profile = _lead_profile(
                evaluation.profile, evaluation.campaigns, evaluation.source_channel
            )
            rows.append(self._lead_row(lead_id, evaluation, changes, profile, len(history), now))
            timers[lead_id] = self._next_decay(evaluation, now)
        metrics.LIFECYCLE_EVENTS.inc(len(events))
        await repository.save_leads(connection, rows)
        await repository.set_decay_timers(connection, timers)
        await add_to_outbox(
            connection, outbox, [outbox_row(e, LIFECYCLE.name, e.subject) for e in events]
        )
        return len(events)

    def _reported_before(
        self,
        previous: repository.StoredLead | None,
        history: Sequence[StoredInteraction],
        arrived: Sequence[str],
        returns: Sequence[Return],
        now: datetime,
    ) -> frozenset[str]:
        if previous is None:
            return frozenset()
        if previous.reported is not None:
            return previous.reported
        # Stored before stage entries were kept by identity: what its history showed
        # before these arrivals was reported then.
        new = set(arrived)
        before = [item for item in history if item.event_id not in new]
        evaluation = evaluate(
            self.model, before, score_as_of(now.timestamp(), before), returns=returns
        )
        return frozenset(r.report_key for r in evaluation.stages_reached)

    async def handle_due_timers(self, limit: int = 500) -> int:
        """Re-score leads whose score is due to decay below a threshold; answer how many."""
        async with self.engine.begin() as connection:
            due = await claim_due(connection, decay_timers, self.clock(), limit)
            await self.reevaluate(connection, set(due))
        if due:
            self.on_committed()
        return len(due)

    def _next_decay(self, evaluation: Evaluation, now: datetime) -> datetime | None:
        """When the lead must be looked at again without a new interaction: its score
        decays below a threshold, or its cool-off ends."""
        moments = []
        if evaluation.thresholds_met:
            seconds = seconds_until_below(self.model, evaluation, max(evaluation.thresholds_met))
            if seconds is not None:
                moments.append(now + timedelta(seconds=seconds + 1))
        blocked = evaluation.hand_off_blocked_until
        if blocked is not None and blocked > now.timestamp():
            moments.append(_utc(blocked))
        return min(moments, default=None)

    def _lead_row(
        self,
        lead_id: str,
        evaluation: Evaluation,
        changes: FunnelChanges,
        profile: LeadProfile,
        count: int,
        now: datetime,
    ) -> dict[str, Any]:
        return {
            "id": lead_id,
            "email": profile.email,
            "stage": changes.stage,
            "score": evaluation.score,
            "engagement": evaluation.engagement,
            "fit": evaluation.fit,
            "grade": evaluation.grade,
            "thresholds_met": sorted(evaluation.thresholds_met),
            "campaigns": list(profile.campaigns),
            "interaction_count": count,
            "last_event_time": _utc(evaluation.last_event_time)
            if evaluation.last_event_time
            else None,
            "evaluated_at": now,
            "definitions_version": self.loaded.version,
            "reported_stages": sorted(changes.reported),
            "hand_off_blocked_until": (
                _utc(evaluation.hand_off_blocked_until)
                if evaluation.hand_off_blocked_until
                else None
            ),
        }

    def _envelope(
        self,
        lead_id: str,
        payload: LeadStageChanged | ScoreThresholdCrossed,
        at: datetime,
        event_id: str | None = None,
    ) -> LifecycleRecorded:
        return LifecycleRecorded(
            id=event_id or str(uuid.uuid4()),
            source=SOURCE,
            type=lifecycle_type(payload),
            time=at,
            subject=lead_id,
            definitions_version=self.loaded.version,
            data=payload,
        )

    def _stage_event(self, lead_id: str, reached: StageReached) -> LifecycleRecorded:
        """A stage entry as an event whose id and content follow from the lead's history."""
        at = _utc(reached.time)
        profile = _lead_profile(reached.profile, reached.campaigns, reached.source_channel)
        identity = f"{lead_id}/{reached.report_key}"
        if reached.reason == "rescored":
            identity += f"/rescored/{self.loaded.version}"
        return self._envelope(
            lead_id,
            LeadStageChanged(
                lead_id=lead_id,
                from_stage=reached.previous,
                to_stage=reached.stage,
                is_hand_off=reached.stage == self.model.stage_keys[self.model.hand_off],
                reason=reached.reason,
                score=round(reached.score, 3),
                grade=reached.grade,
                occurred_at=at,
                caused_by=reached.event_id,
                profile=profile,
            ),
            at,
            str(uuid.uuid5(STAGE_ENTRIES, identity)),
        )

    def _crossing_event(
        self, lead_id: str, change: ThresholdChange, now: datetime
    ) -> LifecycleRecorded:
        return self._envelope(
            lead_id,
            ScoreThresholdCrossed(
                lead_id=lead_id,
                threshold=change.threshold,
                direction="up" if change.direction == "up" else "down",
                score=round(change.score, 3),
                grade=change.grade,
                occurred_at=now,
            ),
            now,
        )
