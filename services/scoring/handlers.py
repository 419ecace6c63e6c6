"""Scoring's service layer: apply a batch of interactions (or due timers) in one transaction."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from services.scoring import metrics
from services.scoring.domain import (
    Evaluation,
    Return,
    Scored,
    ScoringModel,
    StoredInteraction,
    StoredLead,
    continue_scoring,
    evaluate,
    report_arrivals,
    rescore,
    score_as_of,
    seconds_until_a_threshold_is_lost,
)
from services.scoring.domain.shadow import Candidate, ShadowLead, decide
from services.scoring.identity import identity_keys, resolve_identities
from services.scoring.lifecycle_events import SOURCE, LifecycleEvents, lead_profile
from services.scoring.ports import UnitOfWork, UnitsOfWork
from services.scoring.records import (
    interaction_row,
    lead_row,
    return_row,
    stored_interaction_of,
    utc,
    verdict_row,
)
from shared.consumer import Batch
from shared.deadletter import dead_letter_rows, read_records
from shared.definitions import LoadedDefinitions
from shared.events import InteractionRecorded, NurtureRecorded, SalesActionRecorded
from shared.failpoints import failpoint
from shared.outbox import outbox_row
from shared.topics import LIFECYCLE, NURTURE, SALES_ACTIONS

log = logging.getLogger(__name__)


@dataclass
class ScoringService:
    """Applies interactions to leads under one version of the lead definitions."""

    units: UnitsOfWork
    loaded: LoadedDefinitions
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    # Called after a commit that queued events to publish (the relay is woken by it).
    on_events_queued: Callable[[], None] = field(default=lambda: None)
    # The running shadow run's definitions: every lead scored is scored by them too.
    candidate: Candidate | None = None
    model: ScoringModel = field(init=False)
    events: LifecycleEvents = field(init=False)

    def __post_init__(self) -> None:
        self.use(self.loaded)

    def use(self, loaded: LoadedDefinitions) -> None:
        """Score by these definitions from now on; a lead stored under another version is
        replayed from its whole history when next scored."""
        model = ScoringModel(loaded.definitions)
        self.loaded, self.model, self.events = loaded, model, LifecycleEvents(loaded, model)

    async def handle_interactions(self, batch: Batch) -> None:
        """Store unseen interactions and returns from sales, re-score their leads, queue what
        changed: one transaction with the consumed offsets."""
        recorded, dead = read_records(
            (r for r in batch.records if r.topic not in (NURTURE.name, SALES_ACTIONS.name)),
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
        actions, unreadable = read_records(
            (r for r in batch.records if r.topic == SALES_ACTIONS.name),
            SalesActionRecorded,
            expected="a sales action",
            source=SOURCE,
        )
        dead += unreadable
        verdicts = [row for row in map(verdict_row, actions) if row is not None]
        started = time.perf_counter()
        async with self.units() as uow:
            queued = await self._apply(uow, recorded, returned)
            await uow.verdicts.add(verdicts)
            await uow.outbox.add(dead_letter_rows(dead))
            await uow.save_positions(batch)
            await uow.commit()
        failpoint("scoring.after_commit")
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        metrics.RECORDS.labels("interaction").inc(len(recorded))
        metrics.RECORDS.labels("dead_letter").inc(len(dead))
        if dead:
            log.warning("dead-lettered records", extra={"count": len(dead)})
        if queued or dead:
            self.on_events_queued()

    async def _apply(
        self,
        uow: UnitOfWork,
        recorded: Sequence[InteractionRecorded],
        returned: Sequence[NurtureRecorded],
    ) -> int:
        """Apply the batch; answer how many lifecycle events it queued."""
        sent_back = await uow.returns.add([return_row(event) for event in returned])
        if not recorded:
            return await self.reevaluate(uow, sent_back, replay=sent_back)
        keys = [identity_keys(e.data.contact.email, e.data.contact.anonymous_id) for e in recorded]
        await uow.identities.lock(key for group in keys for key in group)
        known = await uow.identities.known(key for group in keys for key in group)
        resolution = resolve_identities(known, keys, lambda: str(uuid.uuid4()))
        await uow.leads.merge(resolution.merged_into)
        await uow.leads.add(resolution.new_leads)
        await uow.identities.add(resolution.new_identities)
        new = await uow.interactions.add(
            [
                interaction_row(event, lead)
                for event, lead in zip(recorded, resolution.lead_of, strict=True)
            ]
        )
        arrivals: dict[str, list[StoredInteraction]] = {}
        for event, lead in zip(recorded, resolution.lead_of, strict=True):
            if event.id in new:
                arrivals.setdefault(lead, []).append(stored_interaction_of(event))
        replay = set(resolution.merged_into.values()) | sent_back
        return await self.reevaluate(uow, set(arrivals) | replay, arrivals=arrivals, replay=replay)

    async def reevaluate(
        self,
        uow: UnitOfWork,
        lead_ids: set[str],
        *,
        arrivals: Mapping[str, Sequence[StoredInteraction]] | None = None,
        replay: set[str] | None = None,
        rescoring: bool = False,
    ) -> int:
        """Score these leads (`arrivals`: the interactions each just received, in arrival
        order) and queue the events that result. A lead goes on from its saved state;
        its whole history is read and replayed only when it must be: `replay` (merged, or
        returned by sales), an interaction older than one already scored, a rescore."""
        if not lead_ids:
            return 0
        now = self.now()
        stored = await uow.leads.stored(lead_ids)
        arrivals = arrivals or {}
        scored: dict[str, tuple[Scored, int]] = {}
        if not rescoring:
            for lead_id in lead_ids - (replay or set()):
                arrived = arrivals.get(lead_id, ())
                previous = stored.get(lead_id)
                went_on = continue_scoring(
                    self.model, self.loaded.version, previous, arrived, now.timestamp()
                )
                if went_on is not None and previous is not None:
                    scored[lead_id] = (went_on, previous.interaction_count + len(arrived))
        replayed = lead_ids - set(scored)
        scored |= await self._replayed(uow, replayed, stored, arrivals, now, rescoring)
        rows, events, timers = [], [], {}
        for lead_id, (result, count) in scored.items():
            evaluation, changes = result.evaluation, result.changes
            events += [self.events.stage_entered(lead_id, reached) for reached in changes.stages]
            events += [
                self.events.threshold_crossed(lead_id, change, now) for change in changes.crossings
            ]
            profile = lead_profile(
                evaluation.profile, evaluation.campaigns, evaluation.source_channel
            )
            rows.append(lead_row(lead_id, result, profile, count, now, self.loaded.version))
            timers[lead_id] = self._next_decay(evaluation, now)
        metrics.LIFECYCLE_EVENTS.inc(len(events))
        await uow.leads.save(rows)
        await uow.timers.set(timers)
        await uow.outbox.add([outbox_row(e, LIFECYCLE.name, e.subject) for e in events])
        if self.candidate is not None:
            await self._shadow(uow, self.candidate, set(scored), now)
        return len(events)

    async def _shadow(
        self, uow: UnitOfWork, candidate: Candidate, lead_ids: set[str], now: datetime
    ) -> None:
        """Record what the candidate and the active definitions decide of these leads, each
        replayed from its whole history as what-if does; emit nothing."""
        histories = await uow.interactions.histories(lead_ids)
        returns = await uow.returns.of(lead_ids)
        as_of = now.timestamp()
        active_routing = self.loaded.definitions.routing
        decided = []
        for lead_id in lead_ids:
            history, sent_back = histories.get(lead_id, []), returns.get(lead_id, ())
            decided.append(
                ShadowLead(
                    lead_id,
                    decide(self.model, active_routing, lead_id, history, sent_back, as_of),
                    decide(candidate.model, candidate.routing, lead_id, history, sent_back, as_of),
                )
            )
        await uow.shadow_runs.record(candidate.run_id, decided, now)

    async def _replayed(
        self,
        uow: UnitOfWork,
        lead_ids: set[str],
        stored: Mapping[str, StoredLead],
        arrivals: Mapping[str, Sequence[StoredInteraction]],
        now: datetime,
        rescoring: bool,
    ) -> dict[str, tuple[Scored, int]]:
        """These leads scored from their whole stored history."""
        if not lead_ids:
            return {}
        histories = await uow.interactions.histories(lead_ids)
        returns = await uow.returns.of(lead_ids)
        metrics.REPLAYED.inc(len(lead_ids))
        scored = {}
        for lead_id in lead_ids:
            history = histories.get(lead_id, [])
            previous = stored.get(lead_id)
            lead_returns = returns.get(lead_id, ())
            if rescoring:
                result = rescore(self.model, history, lead_returns, now.timestamp(), previous)
            else:
                arrived = [item.event_id for item in arrivals.get(lead_id, ())]
                result = report_arrivals(
                    self.model,
                    history,
                    arrived,
                    now.timestamp(),
                    returns=lead_returns,
                    reported=self._reported_before(previous, history, arrived, lead_returns, now),
                    previous_stage=previous.stage if previous else None,
                    previous_thresholds=previous.thresholds_met if previous else frozenset(),
                )
            scored[lead_id] = (result, len(history))
        return scored

    def _reported_before(
        self,
        previous: StoredLead | None,
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
        async with self.units() as uow:
            due = await uow.timers.claim_due(self.now(), limit)
            queued = await self.reevaluate(uow, set(due))
            await uow.commit()
        if queued:
            self.on_events_queued()
        return len(due)

    async def rescore(self, after: str | None, limit: int) -> tuple[list[str], int]:
        """Score the next `limit` leads after `after` afresh, in one transaction; answer
        their ids and the events emitted."""
        async with self.units() as uow:
            ids = await uow.leads.ids_after(after, limit)
            emitted = await self.reevaluate(uow, set(ids), rescoring=True)
            await uow.commit()
        return ids, emitted

    def _next_decay(self, evaluation: Evaluation, now: datetime) -> datetime | None:
        """When the lead must be looked at again without a new interaction: its score
        decays below a threshold, or its cool-off ends."""
        moments = []
        seconds = seconds_until_a_threshold_is_lost(self.model, evaluation)
        if seconds is not None:
            moments.append(now + timedelta(seconds=seconds + 1))
        blocked = evaluation.hand_off_blocked_until
        if blocked is not None and blocked > now.timestamp():
            moments.append(utc(blocked))
        return min(moments, default=None)
