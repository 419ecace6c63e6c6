"""The lifecycle events scoring emits: stage entries and threshold crossings, as envelopes."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.scoring.domain import ScoringModel, StageReached, ThresholdChange, rounded_scores
from services.scoring.records import utc
from shared.definitions import LoadedDefinitions
from shared.events import (
    LeadProfile,
    LeadStageChanged,
    LifecycleRecorded,
    ScoreReason,
    ScoreThresholdCrossed,
    lifecycle_type,
)

SOURCE = "/scoring"
STAGE_ENTRIES = uuid.UUID("5f1c3a52-9b8e-4d47-a7c1-2e6f0b9d4a10")


def lead_profile(
    known: Mapping[str, Any], campaigns: tuple[str, ...], source_channel: str | None
) -> LeadProfile:
    return LeadProfile(
        email=known.get("email"),
        first_name=known.get("first_name"),
        last_name=known.get("last_name"),
        company=known.get("company"),
        job_title=known.get("job_title"),
        industry=known.get("industry"),
        company_size=known.get("company_size"),
        country=known.get("country"),
        campaigns=campaigns,
        source_channel=source_channel,
    )


@dataclass(frozen=True)
class LifecycleEvents:
    """Builds the events of one version of the lead definitions."""

    loaded: LoadedDefinitions
    model: ScoringModel

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

    def stage_entered(self, lead_id: str, reached: StageReached) -> LifecycleRecorded:
        """A stage entry as an event whose id and content follow from the lead's history."""
        at = utc(reached.time)
        profile = lead_profile(reached.profile, reached.campaigns, reached.source_channel)
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
                top_reasons=tuple(
                    ScoreReason(rule=r.rule, label=r.label, points=round(r.points, 3))
                    for r in reached.reasons
                ),
                scores=rounded_scores(reached.scores),
            ),
            at,
            str(uuid.uuid5(STAGE_ENTRIES, identity)),
        )

    def threshold_crossed(
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
                score_key=change.score_key,
                scores=rounded_scores(change.scores),
            ),
            now,
        )
