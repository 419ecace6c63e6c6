"""The scoring engine, a pure function: examples a sales manager can check, and properties."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.scoring.domain import (
    DAY,
    ScoringModel,
    StoredInteraction,
    evaluate,
    seconds_until_below,
)
from shared.definitions import load_definitions

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ScoringModel(load_definitions(ROOT / "lead-definitions.yaml").definitions)
LADDERS = [
    ScoringModel(load_definitions(ROOT / f"examples/definitions/{name}.yaml").definitions)
    for name in ("waterfall", "contacts-ladder")
]
T0 = 1_790_000_000.0
KNOWN = {"email": "ada@example.com", "company": "Analytical Engines"}


def event(
    n: int,
    channel: str,
    kind: str,
    day: float = 0,
    *,
    profile: Mapping[str, object] | None = None,
    **fields: str | None,
) -> StoredInteraction:
    return StoredInteraction(f"e{n:04d}", T0 + day * DAY, channel, kind, profile=profile, **fields)


def test_a_download_scores_its_points_and_halves_after_the_half_life() -> None:
    lead = [event(1, "web", "content_download", profile=KNOWN)]
    now = evaluate(DEFAULT, lead, T0)
    assert now.score == 10
    assert now.stage == "inquiry"
    later = evaluate(DEFAULT, lead, T0 + 30 * DAY)
    assert later.score == pytest.approx(5)


def test_campaign_multiplier_and_cap() -> None:
    webinar = [event(n, "web", "content_download", campaign="q4-webinar") for n in range(5)]
    result = evaluate(DEFAULT, webinar, T0, explain=True)
    assert result.points_by_rule == {"content-download": 30}  # 15 each, capped at 30


def test_fit_comes_from_the_latest_known_profile() -> None:
    lead = [
        event(1, "email", "open", 0, profile={"job_title": "Intern", **KNOWN}),
        event(2, "email", "open", 1, profile={"job_title": "VP Sales", "company_size": 500}),
    ]
    result = evaluate(DEFAULT, lead, T0 + DAY, explain=True)
    assert result.fit_by_rule == {"executive": 20, "mid-market-and-up": 15}
    assert result.fit == 35


def test_engagement_and_fit_together_reach_mql_then_the_hand_off() -> None:
    profile = {**KNOWN, "job_title": "Head of Data", "company_size": 800, "country": "DE"}
    lead = [
        event(1, "web", "form_submit", 0, profile=profile),
        event(2, "web", "page_view", 0.1, url="https://acme.test/pricing"),
        event(3, "tradeshow", "meeting", 1),
    ]
    result = evaluate(DEFAULT, lead, T0 + DAY)
    assert [(s.previous, s.stage, s.reason) for s in result.stages_reached] == [
        (None, "inquiry", "passed_through"),  # the form made it an MQL at once
        ("inquiry", "mql", "criteria"),
        ("mql", "sql", "criteria"),
    ]
    assert result.stages_reached[2].event_id == "e0003"
    assert result.grade == "A"


def test_a_demo_request_campaign_enters_the_hand_off_directly() -> None:
    lead = [event(1, "web", "page_view", campaign="demo-request", url="/demo", profile=KNOWN)]
    result = evaluate(DEFAULT, lead, T0)
    assert result.stage == "sql"
    assert [(s.stage, s.reason) for s in result.stages_reached] == [
        ("inquiry", "passed_through"),
        ("mql", "passed_through"),
        ("sql", "entry_stage"),
    ]


def test_stages_do_not_move_back_when_points_decay() -> None:
    lead = [event(1, "web", "demo_request", profile={**KNOWN, "job_title": "CTO"})]
    assert evaluate(DEFAULT, lead, T0 + 365 * DAY).stage == "sql"


def test_anonymous_visitors_have_points_but_no_stage() -> None:
    result = evaluate(DEFAULT, [event(1, "web", "page_view", url="/blog")], T0)
    assert (result.score, result.stage) == (1, None)


def test_time_until_decay_takes_the_score_below_a_threshold() -> None:
    lead = [event(n, "tradeshow", "meeting", 0) for n in range(3)]  # 120 points
    result = evaluate(DEFAULT, lead, T0)
    seconds = seconds_until_below(DEFAULT, result, 60)
    assert seconds == pytest.approx(30 * DAY)
    assert seconds is not None
    assert evaluate(DEFAULT, lead, T0 + seconds + 1).score < 60
    assert seconds_until_below(DEFAULT, result, 200) is None


CHANNEL_TYPES = [
    ("web", "page_view"),
    ("web", "form_submit"),
    ("web", "content_download"),
    ("web", "demo_request"),
    ("email", "open"),
    ("email", "click"),
    ("email", "unsubscribe"),
    ("tradeshow", "badge_scan"),
    ("tradeshow", "meeting"),
    ("social", "message"),
]


@st.composite
def histories(draw: st.DrawFn, max_size: int = 25) -> list[StoredInteraction]:
    size = draw(st.integers(min_value=0, max_value=max_size))
    events = []
    for n in range(size):
        channel, kind = draw(st.sampled_from(CHANNEL_TYPES))
        day = draw(st.floats(min_value=0, max_value=120, allow_nan=False))
        campaign = draw(st.sampled_from([None, "q4-webinar", "newsletter", "newsletter-2026"]))
        profile = draw(st.sampled_from([None, KNOWN, {"job_title": "CTO", "company_size": 900}]))
        url = draw(st.sampled_from([None, "https://acme.test/pricing", "/blog"]))
        network = "linkedin" if channel == "social" else None
        events.append(
            event(
                n, channel, kind, day, campaign=campaign, url=url, network=network, profile=profile
            )
        )
    return events


AS_OF = T0 + 200 * DAY


@given(histories(), st.randoms(use_true_random=False))
def test_order_of_arrival_does_not_matter(history: list[StoredInteraction], random: object) -> None:
    shuffled = list(history)
    random.shuffle(shuffled)  # type: ignore[attr-defined]
    for model in (DEFAULT, *LADDERS):
        assert evaluate(model, shuffled, AS_OF) == evaluate(model, history, AS_OF)


@given(histories(), st.integers(min_value=0, max_value=25))
def test_a_split_history_gives_the_same_result_as_the_whole(
    history: list[StoredInteraction], cut: int
) -> None:
    """Scoring what arrived so far, then everything, agrees with scoring everything at once."""
    in_time = sorted(history, key=lambda e: e.order)
    earlier, later = in_time[:cut], in_time[cut:]
    whole = evaluate(DEFAULT, in_time, AS_OF)
    assert evaluate(DEFAULT, later + earlier, AS_OF) == whole
    so_far = evaluate(DEFAULT, earlier, AS_OF)
    assert whole.stages_reached[: len(so_far.stages_reached)] == so_far.stages_reached


@given(histories(), st.floats(min_value=0, max_value=400), st.floats(min_value=0, max_value=400))
def test_with_no_new_interactions_a_positive_score_only_decays(
    history: list[StoredInteraction], first: float, second: float
) -> None:
    positive = [e for e in history if e.type not in ("unsubscribe", "bounce")]
    start = max((e.time for e in positive), default=T0)
    early, late = sorted((first, second))
    at_early = evaluate(DEFAULT, positive, start + early * DAY)
    at_late = evaluate(DEFAULT, positive, start + late * DAY)
    assert at_late.score <= at_early.score + 1e-9
    assert at_late.engagement >= 0
    assert at_late.stage == at_early.stage


@settings(max_examples=200)
@given(
    st.lists(st.floats(min_value=0, max_value=6.99), max_size=40),
    st.sampled_from([None, "q4-webinar"]),
)
def test_a_capped_rule_never_gives_more_than_its_cap_in_a_window(
    days: list[float], campaign: str | None
) -> None:
    clicks = [
        event(n, "email", "click", day, campaign=campaign, url="/x") for n, day in enumerate(days)
    ]
    result = evaluate(DEFAULT, clicks, T0 + 7 * DAY, explain=True)
    assert result.points_by_rule.get("email-click", 0) <= 15 + 1e-9


@given(histories())
def test_caps_hold_in_every_window_of_a_long_history(history: list[StoredInteraction]) -> None:
    result = evaluate(DEFAULT, history, AS_OF, explain=True)
    span_days = 121
    for rule in DEFAULT.definitions.scoring.rules:
        if rule.cap:
            windows = math.ceil(span_days / rule.cap.window_days) + 1
            assert result.points_by_rule.get(rule.key, 0) <= rule.cap.points * windows + 1e-9


def test_resume_from_stored_offsets_unless_the_log_was_reset() -> None:
    from shared.consumer import LogStart, StoredPosition, resume_offset

    same = LogStart("epoch-1", 100)
    assert resume_offset(None, same) == (0, False)
    assert resume_offset(StoredPosition(42, "epoch-1"), same) == (42, False)
    assert resume_offset(StoredPosition(42, "epoch-0"), same) == (0, True)
    no_marker = LogStart(None, 10)
    assert resume_offset(StoredPosition(42, None), no_marker) == (0, True)
    assert resume_offset(StoredPosition(8, None), no_marker) == (8, False)


def test_the_waterfall_hands_off_at_mql_and_the_ladder_at_qualified() -> None:
    waterfall, ladder = LADDERS
    engaged = [
        event(1, "web", "form_submit", 0, profile={**KNOWN, "job_title": "Partner"}),
        event(2, "web", "content_download", 0.5),
        event(3, "web", "form_submit", 1),
        event(4, "web", "content_download", 1.5),
    ]
    assert evaluate(waterfall, engaged, T0 + 2 * DAY).stage == "mql"
    result = evaluate(ladder, engaged, T0 + 2 * DAY)
    assert [s.stage for s in result.stages_reached] == ["contacts", "inquiries", "qualified"]


def test_a_returned_lead_is_not_handed_off_again_before_its_cool_off_ends() -> None:
    from services.scoring.domain import Return

    lead = [event(1, "web", "demo_request", 0, profile=KNOWN)]
    nurture = Return("r1", T0 + DAY, "nurture", resets_score=False, eligible_again=T0 + 10 * DAY)
    during = lead + [event(n, "tradeshow", "meeting", n) for n in (2, 3, 4)]
    result = evaluate(DEFAULT, during, T0 + 5 * DAY, returns=[nurture])
    assert [(s.previous, s.stage, s.reason, s.cycle) for s in result.stages_reached] == [
        (None, "inquiry", "passed_through", 0),
        ("inquiry", "mql", "passed_through", 0),
        ("mql", "sql", "entry_stage", 0),
        ("sql", "nurture", "returned", 0),
        ("nurture", "inquiry", "passed_through", 1),  # climbing again, from the top
        ("inquiry", "mql", "criteria", 1),
    ]
    assert result.stage == "mql"
    after = evaluate(DEFAULT, during, T0 + 11 * DAY, returns=[nurture])
    assert after.stages_reached[-1].stage == "sql"  # the cool-off ended with the score still high
    assert after.stages_reached[-1].time == T0 + 10 * DAY


def test_reset_score_and_disqualify_follow_the_reason() -> None:
    from services.scoring.domain import Return

    lead = [event(n, "tradeshow", "meeting", 0, profile=KNOWN) for n in range(3)]
    reset = Return("r1", T0 + 1, "nurture", resets_score=True, eligible_again=T0 + DAY)
    assert evaluate(DEFAULT, lead, T0 + 2, returns=[reset]).engagement == 0
    gone = Return("r2", T0 + 1, "disqualified", resets_score=False, eligible_again=None)
    later = [*lead, event(9, "web", "demo_request", 50)]
    result = evaluate(DEFAULT, later, T0 + 60 * DAY, returns=[gone])
    assert result.stage != "sql"
    assert result.hand_off_blocked_until is None
