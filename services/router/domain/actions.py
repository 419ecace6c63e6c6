"""What a rep may do to a lead, and what each action needs, by the lead definitions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from services.router.domain.status import LeadStatus
from shared.definitions.model import LeadDefinitions

Action = Literal["accept", "reject", "qualify", "convert", "won", "lost"]
Outcome = Literal["won", "lost"]


def action_stages(definitions: LeadDefinitions) -> dict[str, str]:
    """The stage each sales action moves a lead to."""
    return {stage.entry.action: stage.key for stage in definitions.stages if stage.entry.action}


def allowed_actions(
    definitions: LeadDefinitions, stage: str | None, status: LeadStatus
) -> list[str]:
    """What a rep may do to a lead now.

    A lead just assigned can be accepted or rejected; an accepted one can be qualified
    (its budget, timeframe... recorded, moving it to the qualify stage where the
    definitions have one), converted, closed (won, lost) or rejected. Actions that enter a
    stage exist only where the definitions have that stage; no going back to an earlier one.
    """
    targets = action_stages(definitions)
    if status == LeadStatus.ASSIGNED:
        candidates = ["accept", "reject"]
    elif status == LeadStatus.ACCEPTED:
        order = {s.key: index for index, s in enumerate(definitions.stages)}
        here = order.get(stage or "", -1)
        forward = [a for a in ("qualify", "convert") if a in targets and order[targets[a]] > here]
        qualify = [] if "qualify" in targets else ["qualify"]  # records fields, stays put
        candidates = [*qualify, *forward, "won", "lost", "reject"]
    else:
        return []
    return [action for action in candidates if action in targets or action == "qualify"]


def missing_requirements(
    definitions: LeadDefinitions, action: str, details: Mapping[str, Any]
) -> list[str]:
    """The qualification fields a stage requires that the rep did not record."""
    target = action_stages(definitions).get(action)
    stage = next((s for s in definitions.stages if s.key == target), None)
    return [field for field in (stage.entry.requires if stage else ()) if not details.get(field)]
