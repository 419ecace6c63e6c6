"""Named scores: several scores per lead, each with its own rules, caps, decay, fit and
thresholds, and stages entered by criteria that combine them."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
import yaml

from services.scoring.domain import (
    DAY,
    ScoringModel,
    StoredInteraction,
    StoredLead,
    continue_scoring,
    evaluate,
    report_arrivals,
    seconds_until_a_threshold_is_lost,
)
from shared.definitions import DefinitionsError
from shared.definitions.loader import parse_definitions
from shared.definitions.render import document, to_markdown
from shared.events import ScoreThresholdCrossed
from tests.unit.test_definitions import MINIMAL
from tests.unit.test_scoring_engine import T0
from tests.unit.test_stage_reporting import ENGINES, Engine, _Lead, stored_as

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PRODUCT_LINES = (ROOT / "examples/definitions/product-lines.yaml").read_text()
MODEL = ScoringModel(parse_definitions(PRODUCT_LINES, Path("product-lines.yaml")).definitions)
VP = {"email": "vp@contoso.example", "company": "Contoso", "job_title": "VP Sales"}
MANAGER = {"email": "mo@contoso.example", "company": "Contoso", "job_title": "Sales Manager"}


def visit(
    number: int, days: float, url: str, profile: dict[str, str] | None = None
) -> StoredInteraction:
    return StoredInteraction(
        f"e{number:03d}", T0 + days * DAY, "web", "page_view", url=url, profile=profile
    )


def download(number: int, days: float, campaign: str) -> StoredInteraction:
    return StoredInteraction(f"e{number:03d}", T0 + days * DAY, "web", "content_download", campaign)


def test_a_definitions_file_without_named_scores_keeps_its_version() -> None:
    """The new fields, left empty, are not part of what the version hashes."""
    base = parse_definitions(MINIMAL, Path("a.yaml"))
    spelled_out = MINIMAL.replace(
        "entry: {score: 50}", "entry: {score: 50, all_of: {}, any_of: {}}"
    )
    explicit = parse_definitions(spelled_out + "scores: []\n", Path("b.yaml"))
    assert explicit.version == base.version
    dumped = base.definitions.model_dump(mode="json")
    assert "scores" not in dumped
    assert "all_of" not in dumped["stages"][1]["entry"]


def test_each_named_score_caps_and_decays_by_its_own_rules() -> None:
    pricing = [visit(n, 0, "https://acme.example/analytics/pricing", VP) for n in range(4)]
    now = evaluate(MODEL, pricing, T0, explain=True)
    [analytics, crm] = now.named_scores
    # Pages 5 each, capped at 20 a week; pricing 15 each, capped at 30 a week.
    assert analytics.score == 50
    assert analytics.decayed_by_rule == {"analytics-pages": 20, "analytics-pricing": 30}
    assert (crm.key, crm.score) == ("crm", 0)
    assert now.engagement == 4  # the main score counts page views by its own rules
    three_weeks = evaluate(MODEL, pricing, T0 + 21 * DAY, explain=True)
    assert three_weeks.scores["analytics"] == pytest.approx(25)  # half-life 21 days
    assert three_weeks.engagement == pytest.approx(4 * 0.5 ** (21 / 30))  # half-life 30 days


def test_the_hand_off_takes_fit_and_one_product_score() -> None:
    deep_into_analytics = [
        visit(1, 0, "https://acme.example/analytics/pricing", VP),
        visit(2, 0, "https://acme.example/analytics/pricing"),
        download(3, 0, "analytics-webinar"),
        download(4, 0, "analytics-webinar"),
    ]
    assert evaluate(MODEL, deep_into_analytics[:3], T0).stage == "inquiry"  # analytics 55
    handed_off = evaluate(MODEL, deep_into_analytics, T0)
    assert handed_off.stage == "sql"
    [reached] = [r for r in handed_off.stages_reached if r.stage == "sql"]
    assert reached.reason == "criteria"
    assert (reached.event_id, reached.scores) == ("e004", {"analytics": 70.0, "crm": 0.0})
    # The same interest from someone who does not fit (a manager: fit 10) is not enough.
    manager = [
        visit(1, 0, "https://acme.example/analytics/pricing", MANAGER),
        *deep_into_analytics[1:],
    ]
    assert evaluate(MODEL, manager, T0).stage == "inquiry"


def test_all_of_asks_every_score_its_minimum() -> None:
    both = PRODUCT_LINES.replace(
        "any_of: {analytics: 60, crm: 60}", "all_of: {fit: 20, analytics: 30, crm: 30}"
    )
    model = ScoringModel(parse_definitions(both, Path("both.yaml")).definitions)
    analytics_only = [visit(n, 0, "https://acme.example/analytics/pricing", VP) for n in range(3)]
    assert evaluate(model, analytics_only, T0).stage == "inquiry"
    crm_too = [
        *analytics_only,
        visit(9, 0, "https://acme.example/crm/pricing"),
        visit(10, 0, "https://acme.example/crm/pricing"),
    ]
    assert evaluate(model, crm_too, T0).stage == "sql"


def test_a_named_threshold_is_crossed_up_then_down_and_reported_once_each_way() -> None:
    first = [
        visit(1, 0, "https://acme.example/crm/pricing", MANAGER),
        visit(2, 0, "https://acme.example/crm"),
        visit(3, 0, "https://acme.example/crm"),
    ]
    up = report_arrivals(MODEL, first, ["e001", "e002", "e003"], T0)
    [crossed] = up.changes.crossings
    assert (crossed.score_key, crossed.threshold, crossed.direction) == ("crm", 30, "up")
    assert crossed.score == 30
    assert crossed.scores == {"analytics": 0, "crm": 30}
    stored = StoredLead(
        "lead",
        up.changes.stage,
        up.evaluation.thresholds_met,
        up.changes.reported,
        2,
        up.state,
        "v1",
    )
    again = continue_scoring(
        MODEL, "v1", stored, [visit(4, 0.1, "https://acme.example/crm")], T0 + 0.1 * DAY
    )
    assert again is not None
    assert again.changes.crossings == []
    later = StoredLead(
        "lead", again.changes.stage, frozenset(), again.changes.reported, 3, again.state, "v1"
    )
    quiet = continue_scoring(MODEL, "v1", later, [], T0 + 10 * DAY)
    assert quiet is not None
    [down] = quiet.changes.crossings
    assert (down.score_key, down.threshold, down.direction) == ("crm", 30, "down")
    # The replay of the whole history reports the same from what was stored.
    replayed = report_arrivals(
        MODEL,
        [*first, visit(4, 0.1, "https://acme.example/crm")],
        [],
        T0 + 10 * DAY,
        reported=later.reported or frozenset(),
    )
    assert replayed.changes.crossings == quiet.changes.crossings


def test_an_interaction_arriving_late_reports_named_crossings_since_the_lead_was_stored() -> None:
    early, late = (
        visit(1, 0, "https://acme.example/crm/pricing", MANAGER),
        visit(2, 1, "https://acme.example/crm/pricing"),
    )
    stored = report_arrivals(MODEL, [late], ["e002"], T0 + DAY)
    assert stored.changes.crossings == []  # 15 + 5: below 30
    both = report_arrivals(
        MODEL, [early, late], ["e001"], T0 + DAY, reported=stored.changes.reported
    )
    assert [(c.score_key, c.direction) for c in both.changes.crossings] == [("crm", "up")]


def test_a_crossing_event_says_which_score_crossed_and_old_ones_mean_the_main_score() -> None:
    old = {
        "lead_id": "l",
        "threshold": 50,
        "direction": "up",
        "score": 51,
        "grade": "B",
        "occurred_at": "2026-11-28T00:00:00Z",
    }
    assert ScoreThresholdCrossed.model_validate(old).score_key == "score"
    assert ScoreThresholdCrossed.model_validate(old).scores == {}


def test_the_timer_covers_the_named_scores_thresholds() -> None:
    pricing = [visit(n, 0, "https://acme.example/crm/pricing", MANAGER) for n in range(2)]
    evaluation = evaluate(MODEL, pricing, T0)
    assert evaluation.thresholds_met == frozenset()
    # 40 crm points halving every 21 days fall below 30 after 21 * log2(40 / 30) days.
    seconds = seconds_until_a_threshold_is_lost(MODEL, evaluation)
    assert seconds == pytest.approx(21 * DAY * 0.4150375, rel=1e-6)


@pytest.mark.parametrize(
    ("change", "place", "message"),
    [
        (
            {"any_of": {"analytic": 60}},
            "stages[2].entry.any_of.analytic",
            "score 'analytic' is not defined",
        ),
        ({"all_of": {"fit": 500}}, "stages[2].entry.all_of.fit", "no lead can reach 500"),
    ],
)
def test_criteria_name_known_and_reachable_scores(
    change: dict[str, object], place: str, message: str
) -> None:
    document = yaml.safe_load(PRODUCT_LINES)
    document["stages"][2]["entry"] = {"required_fields": ["email"], **change}
    with pytest.raises(DefinitionsError) as raised:
        parse_definitions(yaml.safe_dump(document), Path("broken.yaml"))
    assert f"{place}: {message}" in str(raised.value)


def test_a_named_score_key_is_its_own() -> None:
    document = yaml.safe_load(PRODUCT_LINES)
    document["scores"][1]["key"] = "engagement"
    document["scores"].append({**document["scores"][0]})
    with pytest.raises(DefinitionsError) as raised:
        parse_definitions(yaml.safe_dump(document), Path("broken.yaml"))
    assert "scores[1].key: score 'engagement' names a part of the main score" in str(raised.value)
    assert "scores[2].key: score 'analytics' twice" in str(raised.value)


def test_the_rendered_definitions_show_each_named_score() -> None:
    loaded = parse_definitions(PRODUCT_LINES, Path("product-lines.yaml"))
    rendered = to_markdown(document(loaded))
    assert "Analytics" in rendered
    assert "analytics-pricing" in rendered
    assert "any of: analytics ≥ 60, crm ≥ 60" in rendered


def crossings_and_reported(
    engine: Engine, batches: list[list[tuple[str, StoredInteraction]]]
) -> tuple[list[tuple[str, str, float, str]], dict[str, frozenset[str] | None]]:
    """Every crossing the engine reports of a stream fed in these batches, and what it
    keeps as reported of each lead in the end."""
    leads: dict[str, _Lead] = defaultdict(_Lead)
    crossings = []
    for batch in batches:
        arrived: dict[str, list[StoredInteraction]] = defaultdict(list)
        for lead_id, interaction in batch:
            leads[lead_id].history.append(interaction)
            arrived[lead_id].append(interaction)
        for lead_id, interactions in arrived.items():
            lead = leads[lead_id]
            scored = engine(MODEL, lead, interactions)
            crossings += [
                (lead_id, c.score_key, c.threshold, c.direction) for c in scored.changes.crossings
            ]
            lead.stored = stored_as(lead_id, scored, len(lead.history))
    return sorted(crossings), {
        key: lead.stored.reported for key, lead in leads.items() if lead.stored
    }


@pytest.mark.parametrize("engine", ENGINES)
def test_batching_never_changes_the_named_crossings_reported(engine: Engine) -> None:
    """Product pages and downloads of two leads, some dated before others: however they are
    batched, each threshold is crossed once, by the same lead, and stays reported."""
    urls = ["/analytics/pricing", "/crm", "/analytics", "/crm/pricing"]
    arrivals = [
        (lead, visit(n, (7 * n % 11) / 10, f"https://acme.example{urls[n % 4]}", MANAGER))
        for n, lead in enumerate(["ada", "bob"] * 6)
    ]
    arrivals += [
        ("ada", download(20, 0.05, "crm-ebook")),
        ("bob", download(21, 0.9, "analytics-webinar")),
    ]
    in_one = crossings_and_reported(engine, [arrivals])
    one_by_one = crossings_and_reported(engine, [[arrival] for arrival in arrivals])
    in_three = crossings_and_reported(engine, [arrivals[:5], arrivals[5:9], arrivals[9:]])
    assert in_one == one_by_one == in_three
    assert in_one[0] == [("ada", "analytics", 30.0, "up"), ("bob", "crm", 30.0, "up")]
