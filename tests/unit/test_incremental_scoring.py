"""Going on from a lead's saved state gives what replaying its whole history gives.

Two services made of nothing but the pure engine take the same steps: interactions
arriving in batches (in order, late, out of order), sales returning leads (with and
without a reset, with a cool-off or for good), and time passing (decay, cool-offs ending).
One replays every touched lead's history each time; the other goes on from the state it
saved, as the scoring service does. After every step, both must agree on every lead's
score, grade, stage, thresholds and saved state, and on every event they emitted.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.scoring.domain import (
    DAY,
    Return,
    Scored,
    ScoringModel,
    StoredInteraction,
    StoredLead,
    continue_scoring,
    report_arrivals,
)
from shared.definitions import load_definitions
from tests.unit.test_scoring_engine import CHANNEL_TYPES, DEFAULT, KNOWN, LADDERS, T0

pytestmark = pytest.mark.unit

VERSION = "v1"
# Two named scores beside the main one, and a hand-off that combines them.
PRODUCT_LINES = ScoringModel(
    load_definitions(
        Path(__file__).resolve().parents[2] / "examples/definitions/product-lines.yaml"
    ).definitions
)


@dataclass
class Arrived:
    interactions: list[tuple[str, StoredInteraction]]


@dataclass
class Returned:
    lead: str
    days_after: float
    resets_score: bool
    cool_off_days: float | None


@dataclass
class TimePassed:
    days: float


Step = Arrived | Returned | TimePassed


@dataclass
class _Lead:
    history: list[StoredInteraction] = field(default_factory=list)
    returns: list[Return] = field(default_factory=list)
    stored: StoredLead | None = None
    evaluation: tuple[Any, ...] = ()


@dataclass
class Service:
    """The scoring service's bookkeeping around one engine."""

    model: ScoringModel
    incremental: bool
    now: float = T0
    leads: dict[str, _Lead] = field(default_factory=lambda: defaultdict(_Lead))
    emitted: list[tuple[Any, ...]] = field(default_factory=list)
    went_on: int = 0  # how often the incremental engine scored without a replay

    def take(self, step: Step) -> None:
        if isinstance(step, Arrived):
            arrived: dict[str, list[StoredInteraction]] = defaultdict(list)
            for lead_id, interaction in step.interactions:
                self.leads[lead_id].history.append(interaction)
                arrived[lead_id].append(interaction)
            for lead_id, interactions in arrived.items():
                self._score(lead_id, interactions, replay=False)
        elif isinstance(step, Returned):
            if step.lead not in self.leads:
                return
            returned = self.now + step.days_after * DAY
            eligible = None if step.cool_off_days is None else returned + step.cool_off_days * DAY
            lead = self.leads[step.lead]
            number = len(lead.returns)
            lead.returns.append(
                Return(f"r{number}", returned, "nurture", step.resets_score, eligible)
            )
            self._score(step.lead, [], replay=True)
        else:
            self.now += step.days * DAY
            for lead_id in list(self.leads):
                self._score(lead_id, [], replay=False)

    def _score(self, lead_id: str, arrived: list[StoredInteraction], *, replay: bool) -> None:
        lead = self.leads[lead_id]
        scored = None
        if self.incremental and not replay:
            scored = continue_scoring(self.model, VERSION, lead.stored, arrived, self.now)
            self.went_on += scored is not None
        if scored is None:
            stored = lead.stored
            scored = report_arrivals(
                self.model,
                lead.history,
                [interaction.event_id for interaction in arrived],
                self.now,
                returns=lead.returns,
                reported=stored.reported or frozenset() if stored else frozenset(),
                previous_stage=stored.stage if stored else None,
                previous_thresholds=stored.thresholds_met if stored else frozenset(),
            )
        self._record(lead_id, scored)

    def _record(self, lead_id: str, scored: Scored) -> None:
        evaluation, changes = scored.evaluation, scored.changes
        self.emitted += [
            (lead_id, r.report_key, r.previous, r.time, r.event_id, r.score, r.grade, r.reason)
            for r in changes.stages
        ]
        self.emitted += [
            (
                lead_id,
                tuple(sorted(r.profile.items())),
                r.campaigns,
                r.source_channel,
                r.reasons,
                r.scores,
            )
            for r in changes.stages
        ]
        self.emitted += [(lead_id, crossing) for crossing in changes.crossings]
        lead = self.leads[lead_id]
        # Through JSON, as PostgreSQL keeps it.
        state = json.loads(json.dumps(scored.state))
        lead.stored = StoredLead(
            lead_id,
            changes.stage,
            evaluation.thresholds_met,
            changes.reported,
            len(lead.history),
            state,
            VERSION,
        )
        lead.evaluation = (
            evaluation.score,
            evaluation.engagement,
            evaluation.grade,
            evaluation.stage,
            evaluation.thresholds_met,
            evaluation.hand_off_blocked_until,
            evaluation.points_by_rule,
            evaluation.decayed_by_rule,
            evaluation.named_scores,
        )

    def standing(self) -> dict[str, tuple[Any, ...]]:
        return {lead_id: (lead.stored, lead.evaluation) for lead_id, lead in self.leads.items()}


@st.composite
def interactions(draw: st.DrawFn, lead: str, number: int) -> tuple[str, StoredInteraction]:
    channel, kind = draw(st.sampled_from(CHANNEL_TYPES))
    day = draw(st.floats(min_value=0, max_value=30, allow_nan=False))
    interaction = StoredInteraction(
        f"{lead}-e{number:03d}",
        T0 + day * DAY,
        channel,
        kind,
        campaign=draw(
            st.sampled_from(
                [None, "q4-webinar", "demo-request", "newsletter", "analytics-demo", "crm-ebook"]
            )
        ),
        url=draw(
            st.sampled_from(
                [None, "https://acme.test/pricing", "/blog", "/analytics/pricing", "/crm"]
            )
        ),
        network="linkedin" if channel == "social" else None,
        profile=draw(
            st.sampled_from([None, KNOWN, {**KNOWN, "job_title": "VP Sales", "country": "DE"}])
        ),
    )
    return lead, interaction


@st.composite
def steps(draw: st.DrawFn) -> list[Step]:
    """Batches of interactions mostly later than the ones before (as live traffic comes),
    sometimes dated earlier, mixed with returns from sales and time passing."""
    leads = [f"lead{n}" for n in range(draw(st.integers(min_value=1, max_value=3)))]
    numbers: dict[str, int] = defaultdict(int)
    taken: list[Step] = []
    for _ in range(draw(st.integers(min_value=1, max_value=12))):
        kind = draw(st.sampled_from(["arrived", "arrived", "arrived", "returned", "time"]))
        if kind == "arrived":
            batch = []
            for _ in range(draw(st.integers(min_value=1, max_value=6))):
                lead = draw(st.sampled_from(leads))
                numbers[lead] += 1
                batch.append(draw(interactions(lead, numbers[lead])))
            if draw(st.booleans()):  # live traffic: in event-time order
                batch.sort(key=lambda arrival: arrival[1].time)
            taken.append(Arrived(batch))
        elif kind == "returned":
            cool_off = draw(st.sampled_from([None, 0.0, 2.0, 9.0]))
            taken.append(
                Returned(
                    draw(st.sampled_from(leads)),
                    draw(st.floats(min_value=0, max_value=1)),
                    draw(st.booleans()),
                    cool_off,
                )
            )
        else:
            taken.append(TimePassed(draw(st.floats(min_value=0, max_value=20))))
    return taken


def _run(model: ScoringModel, taken: list[Step], incremental: bool) -> list[Any]:
    service = Service(model, incremental)
    seen = []
    for step in taken:
        service.take(step)
        seen.append((service.standing(), list(service.emitted)))
    return seen


@settings(max_examples=200, deadline=None)
@given(steps())
def test_going_on_from_the_saved_state_equals_replaying_the_history(taken: list[Step]) -> None:
    for model in (DEFAULT, *LADDERS, PRODUCT_LINES):
        assert _run(model, taken, incremental=True) == _run(model, taken, incremental=False)


def test_an_interaction_in_order_is_scored_without_the_history() -> None:
    """The incremental engine never looks at the history it is not given."""
    service = Service(DEFAULT, incremental=True)
    first = [("ada", StoredInteraction(f"e{n:05d}", T0 + n, "web", "page_view")) for n in range(50)]
    service.take(Arrived(first))
    service.leads["ada"].history.clear()  # gone: only the saved state is left
    later = StoredInteraction("e99999", T0 + 100, "web", "demo_request", campaign="demo-request")
    scored = continue_scoring(DEFAULT, VERSION, service.leads["ada"].stored, [later], T0 + 100)
    assert scored is not None
    assert scored.changes.stage == "sql"


def test_an_interaction_dated_before_the_latest_needs_a_replay() -> None:
    service = Service(DEFAULT, incremental=True)
    service.take(Arrived([("ada", StoredInteraction("e2", T0 + 10, "web", "page_view"))]))
    early = StoredInteraction("e1", T0 + 5, "web", "page_view")
    assert continue_scoring(DEFAULT, VERSION, service.leads["ada"].stored, [early], T0) is None
    assert continue_scoring(DEFAULT, "v2", service.leads["ada"].stored, [], T0) is None
