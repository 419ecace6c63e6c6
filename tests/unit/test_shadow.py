"""Shadow runs on fakes: the pure report, and the service scoring live traffic by a candidate
beside the active definitions without emitting anything, then stopping and promoting it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka import ConsumerRecord

from services.scoring.domain import ScoringModel
from services.scoring.domain.shadow import (
    Decision,
    GradeShift,
    ShadowLead,
    ShadowRun,
    Verdict,
    WeeklyHandOffs,
    decide,
    shadow_report,
)
from services.scoring.records import stored_interaction_of
from services.scoring.shadow import (
    DefinitionsNotWritable,
    ShadowConflict,
    ShadowRuns,
    write_definitions,
)
from shared.consumer import Batch
from shared.definitions import DefinitionsError
from shared.events import InteractionRecorded, SalesActionRecorded
from shared.topics import INTERACTIONS_DLQ, LIFECYCLE, SALES_ACTIONS
from tests.unit.test_scoring_service import LOADED, START, Scoring, interaction, record

pytestmark = pytest.mark.unit

DEFAULT_TEXT = LOADED.source.read_text(encoding="utf-8")
# The hand-off at 40 points, whatever the grade: leads that fill two forms and download
# once go to sales.
CANDIDATE_TEXT = DEFAULT_TEXT.replace(
    "entry: {score: 50, required_fields: [email, company]}",
    "entry: {score: 25, required_fields: [email, company]}",
).replace(
    "entry: {score: 100, grade: B, required_fields: [email, company]}",
    "entry: {score: 40, required_fields: [email, company]}",
)
MONDAY = datetime(2026, 11, 23, tzinfo=UTC)
RUN = ShadowRun(
    id="run-1",
    label="lower hand-off",
    version="c",
    active_version="a",
    started_at=MONDAY,
    stopped_at=None,
    promoted_at=None,
)


def decision(grade: str, handed_off: datetime | None = None, team: str = "dach") -> Decision:
    at = handed_off.timestamp() if handed_off else None
    return Decision(10.0, grade, None, at, team if handed_off else None)


def test_the_report_compares_hand_offs_grades_weekly_load_and_precision() -> None:
    next_week = MONDAY + timedelta(days=8)
    leads = [
        ShadowLead("l1", decision("A", MONDAY), decision("A", MONDAY)),
        ShadowLead("l2", decision("C"), decision("B", next_week, "emea")),
        ShadowLead("l3", decision("B", MONDAY), decision("C")),
        ShadowLead("l4", decision("C"), decision("C")),
        ShadowLead("l5", decision("C"), decision("B", MONDAY)),
    ]
    verdicts: dict[str, Verdict] = {
        "l1": "accepted",
        "l3": "returned",
        "l5": "returned",
        "elsewhere": "accepted",
    }

    report = shadow_report(RUN, leads, verdicts)

    assert report.leads == 5
    assert report.handed_off.candidate_only.lead_ids == ["l2", "l5"]
    assert report.handed_off.active_only.model_dump() == {"count": 1, "lead_ids": ["l3"]}
    assert (report.handed_off.both, report.handed_off.neither) == (1, 1)
    assert report.grade_shift == [
        GradeShift(active_grade="A", candidate_grade="A", leads=1),
        GradeShift(active_grade="B", candidate_grade="C", leads=1),
        GradeShift(active_grade="C", candidate_grade="B", leads=2),
        GradeShift(active_grade="C", candidate_grade="C", leads=1),
    ]
    assert report.weekly_by_team == [
        WeeklyHandOffs(week=MONDAY.date(), team="dach", active=2, candidate=2),
        WeeklyHandOffs(
            week=(MONDAY + timedelta(days=7)).date(), team="emea", active=0, candidate=1
        ),
    ]
    verdict_line = report.verdicts
    assert (verdict_line.accepted, verdict_line.returned) == (1, 2)
    assert verdict_line.active.model_dump() == {
        "handed_off_accepted": 1,
        "handed_off_returned": 1,
        "precision": 0.5,
    }
    assert verdict_line.candidate.precision == pytest.approx(1 / 2)
    assert shadow_report(RUN, [], {}).verdicts.active.precision is None


def test_an_interaction_dated_a_little_after_now_counts_as_the_service_counts_it() -> None:
    """A sender's clock a few seconds ahead: its demo request hands the lead off all the same."""
    now = MONDAY + timedelta(hours=9)
    ahead = interaction("ada@example.com", "web", "demo_request", now + timedelta(seconds=5))
    decided = decide(
        ScoringModel(LOADED.definitions),
        LOADED.definitions.routing,
        "lead-1",
        [stored_interaction_of(ahead)],
        (),
        now.timestamp(),
    )
    assert decided.handed_off_at == (now + timedelta(seconds=5)).timestamp()


def sales_action(lead_id: str, action: str, at: datetime, **details: str) -> SalesActionRecorded:
    return SalesActionRecorded.model_validate(
        {
            "id": f"action-{lead_id}-{action}",
            "source": "/router",
            "type": f"leadflow.sales.{action}",
            "time": at,
            "subject": lead_id,
            "data": {
                "action": action,
                "lead_id": lead_id,
                "rep_id": "rep-1",
                "from_stage": "sql",
                "to_stage": "sal",
                "details": details,
                "occurred_at": at,
            },
        }
    )


def engaged(email: str, at: datetime) -> list[InteractionRecorded]:
    """Two forms and the pricing page: 41 points, a hand-off for the candidate only."""
    return [
        interaction(email, "web", kind, at, company="Acme")
        for kind in ("form_submit", "form_submit", "page_view")
    ]


async def test_a_shadow_run_scores_by_the_candidate_too_emits_nothing_and_is_promoted(
    tmp_path: Path,
) -> None:
    definitions_file = tmp_path / "lead-definitions.yaml"
    definitions_file.write_text(DEFAULT_TEXT)
    plain, shadowed = Scoring(), Scoring()
    runs = ShadowRuns(shadowed.service, definitions_file)
    run = await runs.start(CANDIDATE_TEXT, "hand off at 40")

    for scoring in (plain, shadowed):
        await scoring.receive(*engaged("ada@example.com", START))
        await scoring.interact("vp@example.com", "web", "demo_request", company="Big")
    emitted = [
        [(event["type"], event["data"].get("stage")) for event in scoring.store.published(topic)]
        for scoring in (plain, shadowed)
        for topic in (LIFECYCLE.name,)
    ]
    assert emitted[0] == emitted[1]
    assert len(shadowed.store.data.outbox) == len(plain.store.data.outbox)

    ada, vp = shadowed.lead("ada@example.com")["id"], shadowed.lead("vp@example.com")["id"]
    verdicts = [sales_action(vp, "accept", START), sales_action(ada, "qualify", START)]
    batch = Batch([record(SALES_ACTIONS.name, event) for event in verdicts], {}, {})
    await shadowed.service.handle_interactions(batch)

    report = await runs.report()
    assert report.leads == 2
    assert report.handed_off.candidate_only.lead_ids == [ada]
    assert report.handed_off.both == 1
    assert report.verdicts.accepted == 1
    assert report.verdicts.candidate.precision == 1.0

    with pytest.raises(ShadowConflict):
        await runs.start(CANDIDATE_TEXT, None)
    stopped = await runs.stop()
    assert stopped.stopped_at == START
    shadowed.now = START + timedelta(hours=1)
    await shadowed.interact("grace@example.com", "web", "demo_request", company="Acme")
    assert (await runs.report()).leads == 2, "a stopped run's report is kept as it was"

    promoted, kept = await runs.promote()
    assert promoted.id == run.id
    assert promoted.promoted_at == shadowed.now
    assert definitions_file.read_text() == CANDIDATE_TEXT
    assert kept == tmp_path / f"lead-definitions.{LOADED.version}.yaml"
    assert kept.read_text() == DEFAULT_TEXT
    assert shadowed.service.loaded.version == run.version
    assert (await runs.report()).run.promoted_at == shadowed.now
    with pytest.raises(ShadowConflict):
        await runs.promote()


async def test_a_candidate_that_is_not_valid_definitions_names_its_problems() -> None:
    runs = ShadowRuns(Scoring().service, Path("unused.yaml"))
    with pytest.raises(DefinitionsError) as raised:
        await runs.start(DEFAULT_TEXT.replace("half_life_days: 30", "half_life_days: -1"), None)
    (problem,) = raised.value.found
    assert problem.path == "scoring.decay.half_life_days"
    assert problem.line is not None


async def test_another_instance_follows_the_running_run_and_the_definitions_file(
    tmp_path: Path,
) -> None:
    definitions_file = tmp_path / "lead-definitions.yaml"
    definitions_file.write_text(DEFAULT_TEXT)
    one = Scoring()
    other = Scoring(store=one.store)
    first, second = (
        ShadowRuns(one.service, definitions_file),
        ShadowRuns(other.service, definitions_file),
    )
    run = await first.start(CANDIDATE_TEXT, None)
    await second.watch()
    assert other.service.candidate is not None
    assert other.service.candidate.run_id == run.id

    await first.promote()
    await second.watch()
    assert other.service.candidate is None
    assert other.service.loaded.version == run.version


def test_a_definitions_file_that_cannot_be_replaced_is_left_as_it_was(tmp_path: Path) -> None:
    definitions_file = tmp_path / "lead-definitions.yaml"
    definitions_file.write_text(DEFAULT_TEXT)
    (tmp_path / "lead-definitions.old.yaml").mkdir()  # where the old file would be kept

    with pytest.raises(DefinitionsNotWritable, match=str(definitions_file)):
        write_definitions(definitions_file, CANDIDATE_TEXT, "old")

    assert definitions_file.read_text() == DEFAULT_TEXT
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "lead-definitions.old.yaml",
        "lead-definitions.yaml",
    ]


async def test_sales_actions_become_verdicts_the_latest_wins_and_a_bad_one_is_dead_lettered() -> (
    None
):
    scoring = Scoring()
    later = START + timedelta(hours=1)
    actions = [
        sales_action("lead-1", "reject", later, reason="bad_timing"),
        sales_action("lead-1", "accept", START),
        sales_action("lead-2", "convert", START),
    ]
    records = [record(SALES_ACTIONS.name, action) for action in actions]
    junk = ConsumerRecord(SALES_ACTIONS.name, 0, 9, 0, 0, None, b"{not json", None, 0, 9, [])
    await scoring.service.handle_interactions(Batch([*records, junk], {}, {}))

    assert scoring.store.data.verdicts == {
        "lead-1": {"lead_id": "lead-1", "verdict": "returned", "reason": "bad_timing", "at": later}
    }
    assert len(scoring.store.published(INTERACTIONS_DLQ.name)) == 1


async def test_a_lead_merged_into_another_leaves_the_run_with_the_survivor() -> None:
    scoring = Scoring()
    runs = ShadowRuns(scoring.service, Path("unused.yaml"))
    await runs.start(CANDIDATE_TEXT, None)
    await scoring.receive(interaction("ada@example.com", "web", "form_submit", START))
    await scoring.receive(interaction("", "web", "page_view", START, anonymous_id="cookie-1"))
    assert (await runs.report()).leads == 2
    await scoring.receive(
        interaction("ada@example.com", "web", "page_view", START, anonymous_id="cookie-1")
    )
    assert (await runs.report()).leads == 1
