"""What scoring stores of the events it consumes and of the leads it scores, as rows."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from services.scoring.domain import Scored, StoredInteraction
from shared.events import InteractionRecorded, LeadProfile, NurtureRecorded, SalesActionRecorded


def utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def return_row(event: NurtureRecorded) -> dict[str, Any]:
    returned = event.data
    return {
        "event_id": event.id,
        "lead_id": returned.lead_id,
        "returned_at": returned.returned_at,
        "stage": returned.stage,
        "resets_score": returned.action == "reset_score",
        "eligible_again_at": returned.eligible_again_at,
    }


# Sales' verdict on a lead handed to it, by the action a rep took.
VERDICT_OF_ACTION = {"accept": "accepted", "reject": "returned"}


def verdict_row(event: SalesActionRecorded) -> dict[str, Any] | None:
    """What shadow runs judge hand-offs by; None for an action that is no verdict."""
    taken = event.data
    verdict = VERDICT_OF_ACTION.get(taken.action)
    if verdict is None:
        return None
    reason = taken.details.get("reason")
    return {
        "lead_id": taken.lead_id,
        "verdict": verdict,
        "reason": reason if isinstance(reason, str) else None,
        "at": taken.occurred_at,
    }


def interaction_row(event: InteractionRecorded, lead_id: str) -> dict[str, Any]:
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


def stored_interaction_of(event: InteractionRecorded) -> StoredInteraction:
    """An interaction as the scoring engine takes it, as `interaction_row` stores it."""
    return interaction_as_stored(interaction_row(event, ""))


def interaction_as_stored(row: Mapping[str, Any]) -> StoredInteraction:
    """What PostgreSQL gives back of a row of `interaction_row`."""
    profile = row["profile"]
    return StoredInteraction(
        row["event_id"],
        row["event_time"].timestamp(),
        row["channel"],
        row["type"],
        row["campaign"],
        row["url"],
        row["asset"],
        row["network"],
        json.loads(profile) if profile else None,
    )


def lead_row(
    lead_id: str,
    scored: Scored,
    profile: LeadProfile,
    count: int,
    now: datetime,
    version: str,
) -> dict[str, Any]:
    """The lead as scored under definitions `version` at `now`, from `count` interactions."""
    evaluation, changes = scored.evaluation, scored.changes
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
        "last_event_time": utc(evaluation.last_event_time) if evaluation.last_event_time else None,
        "evaluated_at": now,
        "definitions_version": version,
        "reported_stages": sorted(changes.reported),
        "hand_off_blocked_until": (
            utc(evaluation.hand_off_blocked_until) if evaluation.hand_off_blocked_until else None
        ),
        "timeline_state": scored.state,
    }
