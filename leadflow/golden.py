"""Golden leads: lead definitions tested like code.

A case is a small YAML file: a lead's profile, its interactions (times relative to the
case's moment of truth, `-3d`, `-2h`, `now`), and what must hold at given moments (score
range, grade, stage, thresholds met, handed off or not, which team gets it). The cases run
on the same pure engine as the scoring service and the router's territory rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from services.router.domain.assignment import account_domain, lead_to_route, team_for
from services.scoring.domain import DAY, Evaluation, ScoringModel, StoredInteraction, evaluate
from shared.definitions.loader import (
    ProblemsInFile,
    locate,
    read_file,
    read_yaml,
    shape_problems,
)
from shared.definitions.model import LeadDefinitions

# The moment of truth every relative time counts from: fixed, so a case gives the same
# answer on every run.
NOW = 1_800_000_000.0
_UNITS = {"s": 1.0, "m": 60.0, "h": 3_600.0, "d": DAY}
_RELATIVE = re.compile(r"^(?P<amount>[+-]?\d+(?:\.\d+)?)(?P<unit>[smhd])$")


def _offset(value: str) -> str:
    if value != "now" and not _RELATIVE.match(value):
        raise ValueError("a time relative to now: `now`, or like -3d, -2h, +30m, 0s")
    return value


Relative = Annotated[str, AfterValidator(_offset)]


def seconds_from_now(value: str) -> float:
    match = _RELATIVE.match(value)
    return 0.0 if match is None else float(match["amount"]) * _UNITS[match["unit"]]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GoldenInteraction(_Strict):
    at: Relative
    channel: str
    type: str
    campaign: str | None = None
    url: str | None = None
    asset: str | None = None
    network: str | None = None


class ScoreRange(_Strict):
    min: float | None = None
    max: float | None = None


class Expectation(_Strict):
    at: Relative = "now"
    score: ScoreRange | None = None
    grade: str | None = None
    stage: str | None = None
    thresholds_met: list[float] | None = None
    handed_off: bool | None = None
    team: str | None = None


class GoldenCase(_Strict):
    name: str
    profile: dict[str, Any] = {}
    interactions: list[GoldenInteraction] = []
    expect: list[Expectation]


class GoldenCaseError(ProblemsInFile):
    subject = "the golden case"


def load_case(path: Path) -> GoldenCase:
    """Read a case file; `GoldenCaseError` names the file, the line and the key."""
    document, lines = read_yaml(read_file(path, GoldenCaseError), path, GoldenCaseError)
    try:
        return GoldenCase.model_validate(document)
    except ValidationError as error:
        raise GoldenCaseError(path, locate(shape_problems(error), lines)) from None


@dataclass(frozen=True)
class Check:
    """One expectation of a case at one moment: what was asked, what the engine said."""

    case: str
    at: str
    what: str
    expected: str
    got: str
    breakdown: str = ""

    @property
    def passed(self) -> bool:
        return not self.breakdown


def _history(case: GoldenCase) -> list[StoredInteraction]:
    """The case's interactions; the profile comes with the first, as a form would bring it."""
    return [
        StoredInteraction(
            f"golden-{number:04d}",
            NOW + seconds_from_now(item.at),
            item.channel,
            item.type,
            item.campaign,
            item.url,
            item.asset,
            item.network,
            case.profile if number == 0 else None,
        )
        for number, item in enumerate(case.interactions)
    ]


def _why(result: Evaluation) -> str:
    shares = {**result.decayed_by_rule, **result.fit_by_rule}
    return ", ".join(f"{rule} {points:+.1f}" for rule, points in shares.items()) or "no points"


def run_case(definitions: LeadDefinitions, case: GoldenCase) -> list[Check]:
    """Every expectation of the case checked against the engine."""
    model = ScoringModel(definitions)
    hand_off = model.stage_keys[model.hand_off]
    history = _history(case)
    checks = []
    for expectation in case.expect:
        as_of = NOW + seconds_from_now(expectation.at)
        result = evaluate(model, history, as_of, explain=True)
        handed_off = any(reached.stage == hand_off for reached in result.stages_reached)
        routing = definitions.routing
        domain = account_domain(result.profile.get("email"))
        lead = lead_to_route("golden", result.grade, result.profile, domain)
        team = team_for(routing, lead).key if routing else "(no routing)"
        got: dict[str, tuple[str, bool]] = {}
        if expectation.score is not None:
            low, high = expectation.score.min, expectation.score.max
            inside = (low is None or result.score >= low) and (high is None or result.score <= high)
            got["score"] = (f"{result.score:.1f}", inside)
        if expectation.grade is not None:
            got["grade"] = (result.grade, result.grade == expectation.grade)
        if expectation.stage is not None:
            got["stage"] = (str(result.stage), result.stage == expectation.stage)
        if expectation.thresholds_met is not None:
            met = sorted(result.thresholds_met)
            got["thresholds met"] = (str(met), met == sorted(expectation.thresholds_met))
        if expectation.handed_off is not None:
            got["handed off"] = (str(handed_off), handed_off == expectation.handed_off)
        if expectation.team is not None:
            got["team"] = (team, team == expectation.team)
        expected = _expected(expectation)
        for what, (value, ok) in got.items():
            checks.append(
                Check(
                    case.name,
                    expectation.at,
                    what,
                    expected[what],
                    value,
                    "" if ok else _why(result),
                )
            )
    return checks


def _expected(expectation: Expectation) -> dict[str, str]:
    score = expectation.score
    return {
        "score": "" if score is None else f"{_bound(score.min)} .. {_bound(score.max)}",
        "grade": str(expectation.grade),
        "stage": str(expectation.stage),
        "thresholds met": str(expectation.thresholds_met),
        "handed off": str(expectation.handed_off),
        "team": str(expectation.team),
    }


def _bound(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def run_cases(definitions: LeadDefinitions, files: Iterable[Path]) -> list[Check]:
    return [check for path in sorted(files) for check in run_case(definitions, load_case(path))]


def render(checks: list[Check]) -> str:
    """A table of every check, then why each failure scored as it did."""
    header = ("case", "at", "check", "expected", "got", "")
    rows = [
        (c.case, c.at, c.what, c.expected, c.got, "pass" if c.passed else "FAIL") for c in checks
    ]
    widths = [max(len(row[n]) for row in [header, *rows]) for n in range(len(header))]
    lines = [
        " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
        for row in [header, *rows]
    ]
    failed = [c for c in checks if not c.passed]
    lines += [f"FAIL {c.case} at {c.at}: {c.what}: points then: {c.breakdown}" for c in failed]
    cases = len({c.case for c in checks})
    lines.append(f"{len(checks) - len(failed)} of {len(checks)} checks passed in {cases} cases")
    return "\n".join(line.rstrip() for line in lines)
