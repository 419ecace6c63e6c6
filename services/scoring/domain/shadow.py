"""Shadow runs: what candidate definitions would decide of a lead beside the active ones,
and the report that compares the two over a run. Pure: no database, no clock."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict

from services.scoring.domain.decay import score_as_of
from services.scoring.domain.evaluation import evaluate
from services.scoring.domain.history import Return, StoredInteraction
from services.scoring.domain.model import ScoringModel
from shared.definitions.model import Routing
from shared.definitions.territory import lead_to_route, team_for

# Lead ids listed per side of the hand-off diff; the counts are always whole.
LISTED_LEADS = 100
NO_TEAM = "(no routing)"

Verdict = Literal["accepted", "returned"]


@dataclass(frozen=True)
class Decision:
    """Where one set of definitions puts a lead: its score, grade and stage now, and when it
    was first handed to sales (None: never), to which team."""

    score: float
    grade: str
    stage: str | None
    handed_off_at: float | None
    team: str | None


@dataclass(frozen=True)
class ShadowLead:
    lead_id: str
    active: Decision
    candidate: Decision


def decide(
    model: ScoringModel,
    routing: Routing | None,
    lead_id: str,
    history: Sequence[StoredInteraction],
    returns: Sequence[Return],
    now: float,
) -> Decision:
    """The lead replayed from its whole history under these definitions, as what-if does:
    handed off if it ever entered the hand-off stage; its team by the territory rules. As
    the service does, an interaction dated a little after `now` (a sender's clock) counts."""
    evaluation = evaluate(model, history, score_as_of(now, history), returns=returns)
    hand_off = model.stage_keys[model.hand_off]
    first = next((r for r in evaluation.stages_reached if r.stage == hand_off), None)
    team = None
    if first is not None:
        routed = lead_to_route(lead_id, first.grade, first.profile, None)
        team = team_for(routing, routed).key if routing is not None else NO_TEAM
    return Decision(
        evaluation.score,
        evaluation.grade,
        evaluation.stage,
        first.time if first is not None else None,
        team,
    )


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ShadowRun(_Frozen):
    id: str
    label: str | None
    version: str
    active_version: str
    started_at: datetime
    stopped_at: datetime | None
    promoted_at: datetime | None


class SomeLeads(_Frozen):
    count: int
    lead_ids: list[str]


class HandOffDiff(_Frozen):
    candidate_only: SomeLeads
    active_only: SomeLeads
    both: int
    neither: int


class GradeShift(_Frozen):
    active_grade: str
    candidate_grade: str
    leads: int


class WeeklyHandOffs(_Frozen):
    week: date
    team: str
    active: int
    candidate: int


class SideVerdicts(_Frozen):
    handed_off_accepted: int
    handed_off_returned: int
    precision: float | None


class VerdictSummary(_Frozen):
    accepted: int
    returned: int
    active: SideVerdicts
    candidate: SideVerdicts


class ShadowReport(_Frozen):
    run: ShadowRun
    leads: int
    handed_off: HandOffDiff
    grade_shift: list[GradeShift]
    weekly_by_team: list[WeeklyHandOffs]
    verdicts: VerdictSummary


def _some(lead_ids: Iterable[str]) -> SomeLeads:
    ordered = sorted(lead_ids)
    return SomeLeads(count=len(ordered), lead_ids=ordered[:LISTED_LEADS])


def _week(handed_off_at: float) -> date:
    """The Monday of the ISO week the hand-off happened in (UTC)."""
    day = datetime.fromtimestamp(handed_off_at, UTC).date()
    return day - timedelta(days=day.weekday())


def _weekly(leads: Sequence[ShadowLead]) -> list[WeeklyHandOffs]:
    active: Counter[tuple[date, str]] = Counter()
    candidate: Counter[tuple[date, str]] = Counter()
    for lead in leads:
        for side, counts in ((lead.active, active), (lead.candidate, candidate)):
            if side.handed_off_at is not None:
                counts[(_week(side.handed_off_at), side.team or NO_TEAM)] += 1
    return [
        WeeklyHandOffs(
            week=week, team=team, active=active[week, team], candidate=candidate[week, team]
        )
        for week, team in sorted(active.keys() | candidate.keys())
    ]


def _side_verdicts(handed_off: set[str], verdicts: Mapping[str, Verdict]) -> SideVerdicts:
    accepted = sum(1 for lead in handed_off if verdicts.get(lead) == "accepted")
    returned = sum(1 for lead in handed_off if verdicts.get(lead) == "returned")
    judged = accepted + returned
    return SideVerdicts(
        handed_off_accepted=accepted,
        handed_off_returned=returned,
        precision=accepted / judged if judged else None,
    )


def shadow_report(
    run: ShadowRun, leads: Sequence[ShadowLead], verdicts: Mapping[str, Verdict]
) -> ShadowReport:
    """Candidate against active over the leads the run evaluated: who each would hand to
    sales that the other would not, how grades move, the weekly load per team, and how
    each side's hand-offs fared with sales (precision: accepted among those judged)."""
    by_active = {lead.lead_id for lead in leads if lead.active.handed_off_at is not None}
    by_candidate = {lead.lead_id for lead in leads if lead.candidate.handed_off_at is not None}
    shifts = Counter((lead.active.grade, lead.candidate.grade) for lead in leads)
    judged = {lead.lead_id: verdicts[lead.lead_id] for lead in leads if lead.lead_id in verdicts}
    return ShadowReport(
        run=run,
        leads=len(leads),
        handed_off=HandOffDiff(
            candidate_only=_some(by_candidate - by_active),
            active_only=_some(by_active - by_candidate),
            both=len(by_active & by_candidate),
            neither=len(leads) - len(by_active | by_candidate),
        ),
        grade_shift=[
            GradeShift(active_grade=active, candidate_grade=candidate, leads=count)
            for (active, candidate), count in sorted(shifts.items())
        ],
        weekly_by_team=_weekly(leads),
        verdicts=VerdictSummary(
            accepted=sum(1 for verdict in judged.values() if verdict == "accepted"),
            returned=sum(1 for verdict in judged.values() if verdict == "returned"),
            active=_side_verdicts(by_active, judged),
            candidate=_side_verdicts(by_candidate, judged),
        ),
    )


@dataclass(frozen=True)
class Candidate:
    """The definitions a shadow run scores leads by, beside the active ones."""

    run_id: str
    version: str
    model: ScoringModel
    routing: Routing | None
