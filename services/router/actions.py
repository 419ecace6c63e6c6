"""Rep actions and the roster: what sales does to leads, in routing transactions."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.router import metrics
from services.router.assigner import Assigner
from services.router.domain import (
    Action,
    Lead,
    LeadNotFound,
    RepNotFound,
    Return,
    check_team,
    token_hash,
)
from services.router.ports import UnitOfWork, UnitsOfWork
from shared.definitions.model import LeadDefinitions
from shared.events import (
    LeadReturnedToNurture,
    LeadStageChanged,
    LifecycleRecorded,
    NurtureRecorded,
    SalesActionRecorded,
    SalesActionTaken,
    lifecycle_type,
)
from shared.outbox import outbox_row
from shared.topics import LIFECYCLE, NURTURE, SALES_ACTIONS


@dataclass
class SalesDesk:
    """Applies reps' actions and roster changes; who gets a lead stays with the assigner."""

    units: UnitsOfWork
    assigner: Assigner
    on_committed: Callable[[], None] = field(default=lambda: None)

    @property
    def definitions(self) -> LeadDefinitions:
        return self.assigner.loaded.definitions

    async def act(self, rep_id: str, lead_id: str, action: Action, details: dict[str, Any]) -> str:
        """Apply a rep's action to their lead: store it, emit it, move the stage. Answers
        the stage the lead is in now."""
        async with self.units() as uow:
            lead = await uow.leads.get_for_update(lead_id)
            if lead is None:
                raise LeadNotFound(lead_id)
            from_stage, now = lead.stage, self.assigner.clock()
            await self._apply(uow, lead, rep_id, action, details, now)
            fact = SalesActionTaken(
                action=action,
                lead_id=lead_id,
                rep_id=rep_id,
                from_stage=from_stage,
                to_stage=lead.stage,
                details=details,
                occurred_at=now,
            )
            envelope = self.assigner.envelope(
                SalesActionRecorded, f"leadflow.sales.{action}", lead_id, fact
            )
            await uow.history.record_sales_action(envelope)
            lifecycle = self._stage_changed(lead, from_stage, action, now, caused_by=envelope.id)
            await uow.outbox.add(
                [
                    outbox_row(envelope, SALES_ACTIONS.name, lead_id),
                    outbox_row(lifecycle, LIFECYCLE.name, lead_id),
                ]
            )
            await uow.commit()
        if action in ("reject", "won", "lost"):
            await self.assigner.drain_queue(self.units)  # the rep has room again
        metrics.SALES_ACTIONS.labels(action).inc()
        self.on_committed()
        assert lead.stage is not None  # every lead handed to sales entered a stage
        return lead.stage

    async def _apply(
        self,
        uow: UnitOfWork,
        lead: Lead,
        rep_id: str,
        action: Action,
        details: dict[str, Any],
        now: datetime,
    ) -> None:
        if action == "reject":
            returned = lead.reject(rep_id, details, self.definitions, now)
            await uow.leads.save(lead)
            await uow.timers.set(lead.id, None)
            await self._return_to_nurture(uow, lead, returned, now)
            return
        match action:
            case "accept":
                lead.accept(rep_id, self.definitions, now)
            case "qualify":
                lead.qualify(rep_id, details, self.definitions)
            case "convert":
                lead.convert(rep_id, details, self.definitions)
            case "won" | "lost":
                lead.close(rep_id, action, details, self.definitions)
        await uow.leads.save(lead)
        if action == "accept":
            await uow.timers.set(lead.id, None)
            await self.assigner.announce(uow, lead, "accepted", "the rep accepted")

    def _stage_changed(
        self, lead: Lead, from_stage: str | None, action: Action, now: datetime, caused_by: str
    ) -> LifecycleRecorded:
        assert lead.stage is not None  # every lead handed to sales entered a stage
        stage_changed = LeadStageChanged(
            lead_id=lead.id,
            from_stage=from_stage,
            to_stage=lead.stage,
            is_hand_off=False,
            reason=f"sales:{action}",
            score=lead.score or 0.0,
            grade=lead.grade or "",
            occurred_at=now,
            caused_by=caused_by,
            profile=lead.profile,
        )
        return self.assigner.envelope(
            LifecycleRecorded, lifecycle_type(stage_changed), lead.id, stage_changed
        )

    async def _return_to_nurture(
        self, uow: UnitOfWork, lead: Lead, returned: Return, now: datetime
    ) -> None:
        assert lead.rep_id is not None  # only the lead's rep returns it
        reason = returned.reason
        event = LeadReturnedToNurture(
            lead_id=lead.id,
            reason=returned.key,
            reason_label=reason.label,
            action=reason.action,
            stage=reason.stage,
            rep_id=lead.rep_id,
            track=reason.track,
            returned_at=now,
            eligible_again_at=returned.eligible_again_at,
        )
        envelope = self.assigner.envelope(
            NurtureRecorded, "leadflow.nurture.returned", lead.id, event
        )
        await uow.outbox.add([outbox_row(envelope, NURTURE.name, lead.id)])

    async def create_rep(self, fields: dict[str, Any]) -> tuple[str, str]:
        """Add a rep (with the definitions' default capacity unless given); answer their id
        and bearer token (shown once, stored only as a hash)."""
        routing = self.assigner.routing
        check_team(routing, fields["team"])
        rep_id, token = str(uuid.uuid4()), f"rep-{secrets.token_urlsafe(24)}"
        async with self.units() as uow:
            await uow.reps.add(
                rep_id, token_hash(token), {"capacity": routing.default_capacity, **fields}
            )
            await uow.commit()
        await self.assigner.drain_queue(self.units)
        self.on_committed()
        return rep_id, token

    async def update_rep(self, rep_id: str, fields: dict[str, Any]) -> None:
        """Change a rep (capacity, availability, team...); deactivating hands their leads on."""
        check_team(self.assigner.routing, fields.get("team"))
        async with self.units() as uow:
            leaving = await uow.leads.open_leads_of(rep_id) if fields.get("active") is False else []
            roster = await self.assigner.lock_roster(uow, leaving)
            if not await uow.reps.change(rep_id, fields):
                raise RepNotFound(rep_id)
            for lead in leaving:
                await self.assigner.assign(
                    uow, roster, lead, kind="reassigned", exclude=frozenset({rep_id})
                )
            await uow.commit()
        await self.assigner.drain_queue(self.units)
        self.on_committed()
