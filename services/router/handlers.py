"""Router's service layer for what comes by itself: hand-offs from scoring, missed SLAs and
the queue that reps with room again can take from."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from services.router.assigner import SOURCE, Assigner
from services.router.domain import Lead, LeadStatus, Roster, account_domain
from services.router.ports import UnitOfWork, UnitsOfWork
from shared.consumer import Batch
from shared.deadletter import dead_letter_rows, read_records
from shared.events import LeadStageChanged, LifecycleRecorded


def _stage_change_row(event: LifecycleRecorded, change: LeadStageChanged) -> dict[str, object]:
    return {
        "event_id": event.id,
        "lead_id": change.lead_id,
        "from_stage": change.from_stage,
        "to_stage": change.to_stage,
        "occurred_at": change.occurred_at,
        "grade": change.grade,
        "reason": change.reason,
        "campaigns": list(change.profile.campaigns),
        "source_channel": change.profile.source_channel,
    }


@dataclass
class RouterService:
    units: UnitsOfWork
    assigner: Assigner
    on_committed: Callable[[], None] = field(default=lambda: None)

    async def handle_lifecycle(self, batch: Batch) -> None:
        """Record every stage change and route every lead scoring hands off: one transaction
        with the stored offsets."""
        events, dead = read_records(
            batch.records, LifecycleRecorded, expected="a lifecycle event", source=SOURCE
        )
        changes = [
            (event, event.data) for event in events if isinstance(event.data, LeadStageChanged)
        ]
        async with self.units() as uow:
            await uow.outbox.add(dead_letter_rows(dead))
            await uow.history.record_stage_changes(
                [_stage_change_row(event, change) for event, change in changes]
            )
            hand_offs = [(event.id, change) for event, change in changes if change.is_hand_off]
            new = await uow.history.first_time(event_id for event_id, _ in hand_offs)
            first_copies = []
            for event_id, change in hand_offs:
                if event_id in new:
                    new.discard(event_id)  # a batch may hold a republished copy too
                    first_copies.append(change)
            await self._hand_off(uow, first_copies)
            await uow.save_positions(batch)
            await uow.commit()
        self.on_committed()

    async def _hand_off(self, uow: UnitOfWork, changes: Sequence[LeadStageChanged]) -> None:
        if not changes:
            return
        current = await uow.leads.lock({change.lead_id for change in changes})
        handed_off = []
        for change in changes:
            earlier = current.get(change.lead_id)
            if earlier is not None and earlier.is_with_sales:
                continue  # already with a rep, or waiting for one
            lead = self._handed_off(change, earlier)
            current[lead.id] = lead
            handed_off.append(lead)
        roster = await self.assigner.lock_roster(uow, handed_off)
        for lead in handed_off:
            await self.assigner.assign(uow, roster, lead, kind="assigned")

    def _handed_off(self, change: LeadStageChanged, earlier: Lead | None) -> Lead:
        """The lead as scoring hands it over, with what sales recorded of it before."""
        lead = Lead(
            id=change.lead_id,
            status=LeadStatus.QUEUED,
            stage=change.to_stage,
            team=None,
            grade=change.grade,
            score=change.score,
            profile=change.profile.model_dump(mode="json"),
            account_domain=account_domain(change.profile.email),
            handed_off_at=change.occurred_at,
            definitions_version=self.assigner.loaded.version,
            reasons=[reason.model_dump(mode="json") for reason in change.top_reasons],
            scores=dict(change.scores),
        )
        lead.team = self.assigner.team(None, lead.route()).key
        return earlier.handed_off_again(lead) if earlier is not None else lead

    async def drain_queue(self, limit: int = 200) -> int:
        """Assign waiting leads that reps can take now; answers how many were assigned."""
        assigned = await self.assigner.drain_queue(self.units, limit)
        if assigned:
            self.on_committed()
        return assigned

    async def handle_due_slas(self, limit: int = 100) -> int:
        """A missed SLA reassigns the lead; the last allowed miss escalates to the manager.
        Answers how many follow-ups were due."""
        async with self.units() as uow:
            overdue = await uow.leads.overdue(self.assigner.clock(), limit)
            roster = await self.assigner.lock_roster(uow, overdue)
            for lead in overdue:
                await self._breach(uow, roster, lead)
            await uow.commit()
        if overdue:
            self.on_committed()
        return len(overdue)

    async def _breach(self, uow: UnitOfWork, roster: Roster, lead: Lead) -> None:
        await uow.timers.set(lead.id, None)
        manager = self.assigner.team(lead.team, lead.route()).manager
        missed = lead.miss_sla(self.assigner.routing.escalate_after_breaches, manager)
        if missed == "reassign":
            assert lead.rep_id is not None  # an assigned lead has a rep
            missed_by = frozenset({lead.rep_id})
            await self.assigner.assign(uow, roster, lead, kind="reassigned", exclude=missed_by)
        elif missed == "escalate":
            await uow.leads.save(lead)
            reason = f"SLA missed {lead.breaches} times; escalated to {manager}"
            await self.assigner.announce(uow, lead, "escalated", reason, escalated_to=manager)
