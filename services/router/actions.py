"""Rep actions and the roster: what sales does to leads, through the router's transactions."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Row, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from services.router import metrics, repository
from services.router.domain import (
    ActionNotAllowed,
    LeadNotFound,
    MissingRequirements,
    NotYourLead,
    RepNotFound,
    UnknownReason,
    action_stages,
    allowed_actions,
    missing_requirements,
)
from services.router.handlers import RouterService, token_hash
from services.router.tables import outbox, reps, sales_actions
from shared.events import (
    LeadReturnedToNurture,
    LeadStageChanged,
    LifecycleRecorded,
    NurtureRecorded,
    SalesActionRecorded,
    SalesActionTaken,
    lifecycle_type,
)
from shared.outbox import add_to_outbox, outbox_row
from shared.topics import LIFECYCLE, NURTURE, SALES_ACTIONS


@dataclass
class SalesDesk:
    """Applies reps' actions and roster changes; assignment stays with the router."""

    router: RouterService

    async def act(
        self, rep_id: str, lead_id: str, action: str, details: dict[str, Any]
    ) -> dict[str, Any]:
        """Apply a rep's action to their lead: store it, emit it, move the stage."""
        definitions = self.router.loaded.definitions
        async with self.router.routing_transaction() as connection:
            lead = await repository.lead_for_update(connection, lead_id)
            if lead is None:
                raise LeadNotFound(lead_id)
            if lead.rep_id != rep_id:
                raise NotYourLead(lead_id)
            allowed = allowed_actions(definitions, lead.stage, lead.status)
            if action not in allowed:
                raise ActionNotAllowed(action, lead.stage, allowed)
            missing = missing_requirements(definitions, action, details)
            if missing:
                raise MissingRequirements(missing)
            if action == "reject":
                target = await self._return_to_nurture(connection, lead, details)
            else:
                target = action_stages(definitions).get(action, lead.stage)
                await self._move(connection, lead, action, target, details)
            fact = SalesActionTaken(
                action=action,
                lead_id=lead_id,
                rep_id=rep_id,
                from_stage=lead.stage,
                to_stage=target,
                details=details,
                occurred_at=self.router.clock(),
            )
            envelope = self.router.envelope(
                SalesActionRecorded, f"leadflow.sales.{action}", lead_id, fact
            )
            await connection.execute(
                insert(sales_actions).values(
                    event_id=envelope.id,
                    lead_id=lead_id,
                    rep_id=rep_id,
                    action=action,
                    details=details,
                )
            )
            stage_changed = LeadStageChanged(
                lead_id=lead_id,
                from_stage=lead.stage,
                to_stage=target,
                is_hand_off=False,
                reason=f"sales:{action}",
                score=lead.score or 0.0,
                grade=lead.grade or "",
                occurred_at=self.router.clock(),
                caused_by=envelope.id,
                profile=lead.profile,
            )
            lifecycle = self.router.envelope(
                LifecycleRecorded, lifecycle_type(stage_changed), lead_id, stage_changed
            )
            await add_to_outbox(
                connection,
                outbox,
                [
                    outbox_row(envelope, SALES_ACTIONS.name, lead_id),
                    outbox_row(lifecycle, LIFECYCLE.name, lead_id),
                ],
            )
            if action in ("reject", "won", "lost"):
                await self.router.drain_queue(connection)
        metrics.SALES_ACTIONS.labels(action).inc()
        self.router.on_committed()
        return {"lead_id": lead_id, "action": action, "stage": target}

    async def _move(
        self,
        connection: AsyncConnection,
        lead: Row[Any],
        action: str,
        target: str,
        details: dict[str, Any],
    ) -> None:
        values: dict[str, Any] = {"stage": target}
        if action == "accept":
            values |= {"status": "accepted", "accepted_at": self.router.clock()}
            await repository.set_sla_timer(connection, lead.id, None)
            routed = "accepted"
        else:
            routed = None
        if action in ("won", "lost"):
            values |= {"status": "closed", "amount": details.get("amount")}
        if details:
            values["qualification"] = {**lead.qualification, **details}
        await repository.save_lead(connection, lead.id, **values)
        if routed:
            await self.router.record_routing(
                connection, lead, routed, lead.rep_id, "the rep accepted", None
            )

    async def _return_to_nurture(
        self, connection: AsyncConnection, lead: Row[Any], details: dict[str, Any]
    ) -> str:
        nurture = self.router.loaded.definitions.nurture
        reasons = nurture.reasons if nurture else {}
        key = str(details.get("reason", ""))
        reason = reasons.get(key)
        if reason is None:
            raise UnknownReason(key, sorted(reasons))
        now = self.router.clock()
        eligible = (
            None if reason.action == "disqualify" else now + timedelta(days=reason.cool_off_days)
        )
        await repository.save_lead(connection, lead.id, status="returned", stage=reason.stage)
        await repository.set_sla_timer(connection, lead.id, None)
        returned = LeadReturnedToNurture(
            lead_id=lead.id,
            reason=key,
            reason_label=reason.label,
            action=reason.action,
            stage=reason.stage,
            rep_id=lead.rep_id,
            track=reason.track,
            returned_at=now,
            eligible_again_at=eligible,
        )
        envelope = self.router.envelope(
            NurtureRecorded, "leadflow.nurture.returned", lead.id, returned
        )
        await add_to_outbox(connection, outbox, [outbox_row(envelope, NURTURE.name, lead.id)])
        return reason.stage

    async def create_rep(self, values: dict[str, Any]) -> tuple[str, str]:
        """Add a rep; answer their id and bearer token (shown once, stored only as a hash)."""
        rep_id, token = str(uuid.uuid4()), f"rep-{secrets.token_urlsafe(24)}"
        async with self.router.routing_transaction() as connection:
            await connection.execute(
                insert(reps).values(id=rep_id, token_hash=token_hash(token), **values)
            )
            await self.router.drain_queue(connection)
        self.router.on_committed()
        return rep_id, token

    async def update_rep(self, rep_id: str, values: dict[str, Any]) -> None:
        """Change a rep (capacity, availability, team...); deactivating hands their leads on."""
        async with self.router.routing_transaction() as connection:
            found = await connection.scalar(
                update(reps).where(reps.c.id == rep_id).values(**values).returning(reps.c.id)
                if values
                else select(reps.c.id).where(reps.c.id == rep_id)
            )
            if found is None:
                raise RepNotFound(rep_id)
            if values.get("active") is False:
                for lead in await repository.open_leads_of(connection, rep_id):
                    await repository.save_lead(connection, lead.id, status="queued")
                    await self.router.assign(
                        connection, lead.id, kind="reassigned", exclude=frozenset({rep_id})
                    )
            await self.router.drain_queue(connection)
        self.router.on_committed()

    async def rep_for_token(self, token: str) -> str | None:
        async with self.router.engine.connect() as connection:
            return await connection.scalar(
                select(reps.c.id).where(reps.c.token_hash == token_hash(token), reps.c.active)
            )
