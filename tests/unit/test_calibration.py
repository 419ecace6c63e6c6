"""Calibration from sales' feedback, pure: Wilson intervals, the breakdowns, and the changes
to the definitions that the verdicts suggest (a rule sales rejects, the hand-off threshold)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.router.domain.calibration import (
    DIMENSIONS,
    HandOffOutcome,
    breakdown,
    calibration_report,
    calibration_row,
    calibration_sections,
    wilson_interval,
)
from shared.definitions import load_definitions
from shared.definitions.loader import parse_definitions
from shared.definitions.model import LeadDefinitions

pytestmark = pytest.mark.unit

DEFINITIONS = load_definitions(Path("lead-definitions.yaml")).definitions
END = datetime(2026, 11, 28, tzinfo=UTC)
START = END - timedelta(days=30)


def outcome(
    score: float = 120,
    rules: tuple[str, ...] = ("demo-request",),
    *,
    accepted: bool = False,
    returned: str | None = None,
    campaigns: tuple[str, ...] = (),
    converted: bool = False,
    won: bool = False,
) -> HandOffOutcome:
    return HandOffOutcome(
        lead_id=f"lead-{score}",
        definitions_version="v1",
        campaigns=campaigns,
        source_channel="web",
        grade="A",
        score=score,
        rules=rules,
        accepted=accepted,
        return_reason=returned,
        converted=converted,
        won=won,
    )


def report(outcomes: list[HandOffOutcome], target: float = 0.6) -> dict[str, Any]:
    built = calibration_report(outcomes, DEFINITIONS, START, END, target)
    return built.model_dump(mode="json")


def reparsed(document: str) -> LeadDefinitions:
    return parse_definitions(document, Path("candidate.yaml")).definitions


@pytest.mark.parametrize(
    ("successes", "trials", "expected"),
    [
        (8, 10, (0.8, 0.4902, 0.9433)),  # the textbook example
        (0, 5, (0.0, 0.0, 0.4345)),  # z² / (n + z²) = 3.8415 / 8.8415
        (10, 10, (1.0, 0.7225, 1.0)),
        (1, 2, (0.5, 0.0945, 0.9055)),
    ],
)
def test_wilson_interval_matches_known_values(
    successes: int, trials: int, expected: tuple[float, float, float]
) -> None:
    rate = wilson_interval(successes, trials)
    assert rate is not None
    assert (rate.rate, rate.low, rate.high) == pytest.approx(expected, abs=1e-4)


def test_no_trials_no_rate() -> None:
    assert wilson_interval(0, 0) is None


def test_a_lead_accepted_then_returned_counts_as_accepted_and_pending_is_no_verdict() -> None:
    row = calibration_row(
        "all",
        [
            outcome(accepted=True, returned="no_budget", converted=True),
            outcome(returned="bad_timing"),
            outcome(returned="bad_timing"),
            outcome(),
        ],
    )
    assert (row.handed_off, row.accepted, row.returned, row.pending) == (4, 1, 2, 1)
    assert row.acceptance is not None
    assert row.acceptance.rate == pytest.approx(1 / 3, abs=1e-4)
    assert row.return_reasons == {"bad_timing": 2}
    assert row.opportunity_rate is not None
    assert row.opportunity_rate.rate == 0.25
    assert (row.won, row.won_rate is not None and row.won_rate.rate) == (0, 0.0)


def test_a_lead_counts_for_each_campaign_and_each_rule_once() -> None:
    leads = [
        outcome(rules=("demo-request", "executive", "demo-request"), campaigns=("a", "b")),
        outcome(rules=(), campaigns=("b",), accepted=True),
    ]
    by_campaign = breakdown(leads, DIMENSIONS["campaign"])
    assert [(row.key, row.handed_off) for row in by_campaign] == [("a", 1), ("b", 2)]
    by_rule = breakdown(leads, DIMENSIONS["rule"])
    assert [(row.key, row.handed_off) for row in by_rule] == [
        ("(none)", 1),
        ("demo-request", 1),
        ("executive", 1),
    ]


# 8 leads by demo requests, all accepted; 5 by email clicks, 1 accepted, 4 returned.
# Overall 9 / 13 = 0.6923; email-click 1 / 5 = 0.2, Wilson high 0.6245 < 0.6923.
CLICKS_REJECTED = [outcome(100 + i, ("demo-request",), accepted=True) for i in range(8)] + [
    outcome(90 + i, ("email-click",), accepted=i == 0, returned=None if i == 0 else "not_ready")
    for i in range(5)
]


def test_a_rule_sales_accepts_surely_less_than_average_has_its_points_halved() -> None:
    suggestions = report(CLICKS_REJECTED, target=0.5)["suggestions"]
    (halve,) = suggestions
    assert halve["kind"] == "rule_points"
    assert halve["changes"] == [{"path": "scoring.rules[6].points", "from": 3.0, "to": 1.5}]
    assert halve["evidence"]["acceptance_high"] == 0.6245
    assert halve["evidence"]["overall_acceptance"] == 0.6923
    assert "'email-click'" in halve["message"]
    assert "accepted 1 of the 5" in halve["message"]
    assert "-    points: 3.0\n+    points: 1.5\n" in halve["diff"]
    candidate = reparsed(halve["candidate_document"])
    assert next(r for r in candidate.scoring.rules if r.key == "email-click").points == 1.5
    assert (
        candidate.model_dump()
        == DEFINITIONS.model_copy(
            update={
                "scoring": DEFINITIONS.scoring.model_copy(
                    update={
                        "rules": tuple(
                            r.model_copy(update={"points": 1.5}) if r.key == "email-click" else r
                            for r in DEFINITIONS.scoring.rules
                        )
                    }
                )
            }
        ).model_dump()
    )


def test_too_few_verdicts_suggest_nothing_however_bad() -> None:
    """0 of 4 is below 9 of 12, but four verdicts are not a handful."""
    few = CLICKS_REJECTED[:8] + [outcome(90 + i, ("email-click",), returned="x") for i in range(4)]
    assert report(few, target=0.5)["suggestions"] == []


# 3 returned at scores 100, 101, 102; 5 accepted at 110..114. Overall 5 / 8 = 0.625.
RAISED = [outcome(100 + i, returned="bad_timing") for i in range(3)] + [
    outcome(110 + i, accepted=True) for i in range(5)
]


@pytest.mark.parametrize(
    ("target", "threshold", "verdicts"),
    [
        (0.8, 102.0, 6),  # from 100: 5/8 = 0.625; from 101: 5/7 = 0.714; from 102: 5/6 = 0.833
        (0.95, 110.0, 5),  # from 110: 5/5 = 1.0
    ],
)
def test_the_lowest_score_from_which_acceptance_reaches_the_target(
    target: float, threshold: float, verdicts: int
) -> None:
    (raise_it,) = report(RAISED, target=target)["suggestions"]
    assert raise_it["kind"] == "hand_off_threshold"
    assert raise_it["changes"] == [
        {"path": "stages[2].entry.score", "from": 100.0, "to": threshold}
    ]
    assert raise_it["evidence"]["verdicts_at_or_above"] == verdicts
    assert f"-    score: 100.0\n+    score: {threshold}\n" in raise_it["diff"]
    sql = next(s for s in reparsed(raise_it["candidate_document"]).stages if s.key == "sql")
    assert sql.entry.score == threshold


def test_no_threshold_below_the_current_one() -> None:
    """From 93 on, 8 of 10 reach 0.8, but the leads at 90..94 came in by another way (a
    rule's entry stage) under a threshold of 100: lowering it is no answer."""
    suggestions = report(CLICKS_REJECTED, target=0.8)["suggestions"]
    assert [s["kind"] for s in suggestions] == ["rule_points"]


def test_no_threshold_when_the_target_is_met_or_out_of_reach() -> None:
    met = [outcome(100 + i, accepted=i < 4, returned=None if i < 4 else "x") for i in range(5)]
    assert report(met, target=0.8)["suggestions"] == []  # 4 of 5 is 0.8 already
    # 2 of 5, and fewer than five verdicts above the lowest score: 0.9 is out of reach.
    unreachable = [outcome(100 + i, accepted=i >= 3, returned="x") for i in range(5)]
    assert report(unreachable, target=0.9)["suggestions"] == []


def test_the_csv_sections_flatten_the_intervals_into_columns() -> None:
    built = calibration_report(CLICKS_REJECTED, DEFINITIONS, START, END, 0.6)
    sections = calibration_sections(built)
    assert list(sections) == [
        "overall",
        "definitions_version",
        "campaign",
        "source_channel",
        "grade",
        "rule",
    ]
    clicks = sections["rule"][1].model_dump()
    assert clicks["key"] == "email-click"
    assert (clicks["acceptance_rate"], clicks["acceptance_low"], clicks["acceptance_high"]) == (
        0.2,
        0.0362,
        0.6245,
    )
    assert clicks["return_reasons"] == "not_ready: 4"


def test_no_threshold_for_a_hand_off_by_named_scores() -> None:
    """The product lines' hand-off goes by fit and product scores, not by a main score."""
    product_lines = load_definitions(Path("examples/definitions/product-lines.yaml")).definitions
    built = calibration_report(RAISED, product_lines, START, END, 0.8)
    assert built.suggestions == []
