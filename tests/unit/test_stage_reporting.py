"""Stage entries are reported by identity: once each, whatever the batching or arrival order.

`FunnelFeed` plays the scoring service's part with nothing but the pure engine: it keeps
each lead's interactions and what was stored of it, and feeds batches to an engine: one
that replays every history (`report_arrivals`), and one that goes on from the lead's saved
state as the service does (`continue_scoring`, replaying only when it must). To check
another scoring engine, add it to ENGINES.
"""

from __future__ import annotations

import itertools
import json
import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.scoring.domain import (
    DAY,
    Scored,
    ScoringModel,
    StageReached,
    StoredInteraction,
    StoredLead,
    continue_scoring,
    report_arrivals,
)
from tests.unit.test_scoring_engine import CHANNEL_TYPES, DEFAULT, KNOWN, LADDERS, T0

pytestmark = pytest.mark.unit

NOW = T0 + 5 * DAY
VERSION = "v1"
Arrival = tuple[str, StoredInteraction]  # (lead, interaction)


@dataclass
class _Lead:
    history: list[StoredInteraction] = field(default_factory=list)
    stored: StoredLead | None = None

    @property
    def stage(self) -> str | None:
        return self.stored.stage if self.stored else None


Engine = Callable[[ScoringModel, _Lead, list[StoredInteraction]], Scored]


def replaying(model: ScoringModel, lead: _Lead, arrived: list[StoredInteraction]) -> Scored:
    stored = lead.stored
    return report_arrivals(
        model,
        lead.history,
        [interaction.event_id for interaction in arrived],
        NOW,
        reported=stored.reported or frozenset() if stored else frozenset(),
        previous_stage=stored.stage if stored else None,
        previous_thresholds=stored.thresholds_met if stored else frozenset(),
    )


def going_on(model: ScoringModel, lead: _Lead, arrived: list[StoredInteraction]) -> Scored:
    went_on = continue_scoring(model, VERSION, lead.stored, arrived, NOW)
    return went_on if went_on is not None else replaying(model, lead, arrived)


ENGINES = [pytest.param(replaying, id="replay"), pytest.param(going_on, id="incremental")]


@dataclass
class FunnelFeed:
    """The stage events a stream of batches makes a scoring engine emit."""

    engine: Engine
    model: ScoringModel
    leads: dict[str, _Lead] = field(default_factory=lambda: defaultdict(_Lead))
    emitted: list[tuple[str, StageReached]] = field(default_factory=list)

    def feed(self, batch: Sequence[Arrival]) -> None:
        arrived: dict[str, list[StoredInteraction]] = defaultdict(list)
        for lead_id, interaction in batch:
            self.leads[lead_id].history.append(interaction)
            arrived[lead_id].append(interaction)
        for lead_id, interactions in arrived.items():
            lead = self.leads[lead_id]
            scored = self.engine(self.model, lead, interactions)
            self.emitted += [(lead_id, reached) for reached in scored.changes.stages]
            lead.stored = stored_as(lead_id, scored, len(lead.history))

    def payloads(self) -> list[tuple[Any, ...]]:
        """Everything the emitted stage events carry, their ids' identities included, per
        lead in the order emitted (the order across leads is no promise: keys are)."""
        return sorted(
            [
                (
                    lead_id,
                    r.report_key,
                    r.previous,
                    r.time,
                    r.event_id,
                    round(r.score, 3),
                    r.grade,
                    r.reason,
                    tuple(sorted(r.profile.items())),
                    r.campaigns,
                    r.source_channel,
                    tuple((why.rule, round(why.points, 3)) for why in r.reasons),
                )
                for lead_id, r in self.emitted
            ],
            key=lambda payload: payload[0],
        )

    def hand_offs(self, lead_id: str) -> int:
        hand_off = self.model.stage_keys[self.model.hand_off]
        return sum(1 for lead, r in self.emitted if lead == lead_id and r.stage == hand_off)

    def ends_at_hand_off(self, lead_id: str) -> bool:
        return self.leads[lead_id].stage == self.model.stage_keys[self.model.hand_off]


def stored_as(lead_id: str, scored: Scored, count: int) -> StoredLead:
    """What the service stores of a scored lead, its state through JSON as in PostgreSQL."""
    changes = scored.changes
    state = json.loads(json.dumps(scored.state))
    thresholds = scored.evaluation.thresholds_met
    return StoredLead(lead_id, changes.stage, thresholds, changes.reported, count, state, VERSION)


def run(engine: Engine, model: ScoringModel, batches: Sequence[Sequence[Arrival]]) -> FunnelFeed:
    feed = FunnelFeed(engine, model)
    for batch in batches:
        feed.feed(batch)
    return feed


def split(arrivals: Sequence[Arrival], cuts: Sequence[int]) -> list[list[Arrival]]:
    bounds = [0, *sorted({c % (len(arrivals) + 1) for c in cuts}), len(arrivals)]
    return [list(arrivals[a:b]) for a, b in itertools.pairwise(bounds) if b > a]


def download(n: int, day: float) -> StoredInteraction:
    return StoredInteraction(f"e{n:04d}", T0 + day * DAY, "web", "content_download", profile=KNOWN)


def demo_request(n: int, day: float) -> StoredInteraction:
    return StoredInteraction(
        f"e{n:04d}", T0 + day * DAY, "web", "demo_request", campaign="demo-request"
    )


@pytest.mark.parametrize("engine", ENGINES)
def test_a_late_demo_request_is_handed_off_once_however_the_stream_was_batched(
    engine: Engine,
) -> None:
    """Six downloads, then a demo request dated before them: the lead ends sales-ready."""
    arrivals = [("ada", download(n, 1 + n / 10)) for n in range(6)]
    arrivals.append(("ada", demo_request(6, 0.5)))
    in_two = run(engine, DEFAULT, [arrivals[:6], arrivals[6:]])
    in_one = run(engine, DEFAULT, [arrivals])
    one_by_one = run(engine, DEFAULT, [[a] for a in arrivals])
    assert in_two.payloads() == in_one.payloads() == one_by_one.payloads()
    assert [(r.previous, r.stage) for _, r in in_one.emitted] == [
        (None, "inquiry"),
        ("inquiry", "mql"),
        ("mql", "sql"),
    ]
    # Only the hand-off says why; at its moment the downloads had not happened yet.
    assert [[why.rule for why in r.reasons] for _, r in in_one.emitted] == [
        [],
        [],
        ["demo-request"],
    ]
    assert in_one.hand_offs("ada") == 1
    assert in_one.leads["ada"].stage == "sql"


@pytest.mark.parametrize("engine", ENGINES)
def test_what_was_reported_stays_reported(engine: Engine) -> None:
    """A late unsubscribe would have kept the lead below MQL: its stage does not go back."""
    arrivals = [("ada", download(n, 1 + n / 10)) for n in range(3)]
    arrivals += [("ada", StoredInteraction("e0010", T0 + 1.5 * DAY, "web", "form_submit"))]
    arrivals += [("ada", StoredInteraction("e0011", T0 + 1.6 * DAY, "web", "form_submit"))]
    unsubscribe = StoredInteraction("e0020", T0 + 0.5 * DAY, "email", "unsubscribe")
    feed = run(engine, DEFAULT, [arrivals, [("ada", unsubscribe)]])
    assert [r.stage for _, r in feed.emitted] == ["inquiry", "mql"]
    assert feed.leads["ada"].stage == "mql"


@st.composite
def streams(draw: st.DrawFn, kinds: Sequence[tuple[str, str]], max_leads: int = 4) -> list[Arrival]:
    """Interactions of a few leads over four days, listed in the order they arrive."""
    arrivals = []
    for lead in range(draw(st.integers(min_value=1, max_value=max_leads))):
        profile = draw(st.sampled_from([KNOWN, {**KNOWN, "job_title": "VP Sales"}]))
        for n in range(draw(st.integers(min_value=1, max_value=10))):
            channel, kind = draw(st.sampled_from(kinds))
            day = draw(st.floats(min_value=0, max_value=4, allow_nan=False))
            campaign = draw(st.sampled_from([None, "q4-webinar", "demo-request"]))
            url = draw(st.sampled_from([None, "https://acme.test/pricing"]))
            interaction = StoredInteraction(
                f"lead{lead}-e{n:02d}",
                T0 + day * DAY,
                channel,
                kind,
                campaign=campaign,
                url=url,
                profile=profile,
            )
            arrivals.append((f"lead{lead}", interaction))
    return draw(st.permutations(arrivals))


@pytest.mark.parametrize("engine", ENGINES)
@settings(max_examples=150, deadline=None)
@given(streams(CHANNEL_TYPES), st.lists(st.integers(min_value=0), max_size=8))
def test_batching_never_changes_what_is_emitted(
    engine: Engine, arrivals: list[Arrival], cuts: list[int]
) -> None:
    """The same arrivals one by one, in one batch or in any split: the same stage events,
    payloads included, and exactly one hand-off for every lead that ends sales-ready."""
    for model in (DEFAULT, *LADDERS):
        one_by_one = run(engine, model, [[a] for a in arrivals])
        expected = one_by_one.payloads()
        assert run(engine, model, [arrivals]).payloads() == expected
        assert run(engine, model, split(arrivals, cuts)).payloads() == expected
        keys = [(lead, r.report_key) for lead, r in one_by_one.emitted]
        assert len(keys) == len(set(keys))
        for lead in one_by_one.leads:
            assert one_by_one.hand_offs(lead) == (1 if one_by_one.ends_at_hand_off(lead) else 0)


# Rules that only add points and have no cap: with them, more interactions never leave a
# lead lower at any moment, so the furthest stage cannot depend on arrival order. (A late
# interaction that takes points away cannot take back a stage already reported.)
ONLY_ADDING = [("web", "demo_request"), ("tradeshow", "meeting"), ("tradeshow", "demo")]


@pytest.mark.parametrize("engine", ENGINES)
@settings(max_examples=150, deadline=None)
@given(streams(ONLY_ADDING), st.randoms(use_true_random=False))
def test_arrival_order_never_changes_which_stages_are_reported(
    engine: Engine, arrivals: list[Arrival], shuffler: random.Random
) -> None:
    reordered = list(arrivals)
    shuffler.shuffle(reordered)
    for model in (DEFAULT, *LADDERS):
        first = run(engine, model, [[a] for a in arrivals])
        second = run(engine, model, split(reordered, [shuffler.randrange(50) for _ in range(3)]))
        assert {(lead, r.report_key, r.previous) for lead, r in first.emitted} == {
            (lead, r.report_key, r.previous) for lead, r in second.emitted
        }
        for lead in first.leads:
            assert first.hand_offs(lead) == second.hand_offs(lead)
            assert first.hand_offs(lead) == (1 if first.ends_at_hand_off(lead) else 0)
