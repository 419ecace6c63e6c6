"""Golden leads: lead definitions tested like code.

A case is a small YAML file: a lead's profile, its interactions (times relative to the
case's moment of truth, `-3d`, `-2h`, `now`), and what must hold at given moments (score
range, each named score's range, grade, stage, thresholds met, handed off or not, which
team gets it). The cases run
on the same pure engine as the scoring service and the router's territory rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError
from rich.table import Table

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
    scores: dict[str, ScoreRange] | None = None  # named score key -> range
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


def _why(result: Evaluation, score_key: str | None = None) -> str:
    """The points of the main score (or of the named score `score_key`) by rule."""
    shares = {**result.decayed_by_rule, **result.fit_by_rule}
    for named in result.named_scores:
        if named.key == score_key:
            shares = {**named.decayed_by_rule, **named.fit_by_rule}
    return ", ".join(f"{rule} {points:+.1f}" for rule, points in shares.items()) or "no points"


def _in_range(value: float, wanted: ScoreRange) -> tuple[str, bool]:
    """The range as shown, and whether `value` is inside it."""
    low, high = wanted.min, wanted.max
    inside = (low is None or value >= low) and (high is None or value <= high)
    return f"{_bound(low)} .. {_bound(high)}", inside


def run_case(model: ScoringModel, case: GoldenCase) -> list[Check]:
    """Every expectation of the case checked against the engine."""
    definitions = model.definitions
    hand_off = model.stage_keys[model.hand_off]
    history = _history(case)
    checks = []
    for expectation in case.expect:
        result = evaluate(model, history, NOW + seconds_from_now(expectation.at), explain=True)
        # (check, expected, got, holds), for what the expectation names
        found: list[tuple[str, str, str, bool]] = []
        if expectation.score is not None:
            wanted, inside = _in_range(result.score, expectation.score)
            found.append(("score", wanted, f"{result.score:.1f}", inside))
        named_checks = []
        for key, wanted_range in (expectation.scores or {}).items():
            value = result.scores.get(key)
            if value is None:
                named_checks.append((key, "a named score", "(not defined)", False))
                continue
            wanted, inside = _in_range(value, wanted_range)
            named_checks.append((key, wanted, f"{value:.1f}", inside))
        if expectation.grade is not None:
            found.append(
                ("grade", expectation.grade, result.grade, result.grade == expectation.grade)
            )
        if expectation.stage is not None:
            stage = str(result.stage)
            found.append(("stage", expectation.stage, stage, stage == expectation.stage))
        if expectation.thresholds_met is not None:
            wanted_met, met = sorted(expectation.thresholds_met), sorted(result.thresholds_met)
            found.append(("thresholds met", str(wanted_met), str(met), met == wanted_met))
        if expectation.handed_off is not None:
            handed_off = any(reached.stage == hand_off for reached in result.stages_reached)
            wanted_hand_off = expectation.handed_off
            found.append(
                ("handed off", str(wanted_hand_off), str(handed_off), handed_off == wanted_hand_off)
            )
        if expectation.team is not None:
            domain = account_domain(result.profile.get("email"))
            lead = lead_to_route("golden", result.grade, result.profile, domain)
            routing = definitions.routing
            team = team_for(routing, lead).key if routing else "(no routing)"
            found.append(("team", expectation.team, team, team == expectation.team))
        checks += [
            Check(case.name, expectation.at, what, wanted, got, "" if holds else _why(result))
            for what, wanted, got, holds in found
        ] + [
            Check(
                case.name,
                expectation.at,
                f"score {key}",
                wanted,
                got,
                "" if holds else _why(result, key),
            )
            for key, wanted, got, holds in named_checks
        ]
    return checks


def _bound(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def run_cases(definitions: LeadDefinitions, files: Iterable[Path]) -> list[Check]:
    model = ScoringModel(definitions)
    return [check for path in sorted(files) for check in run_case(model, load_case(path))]


def table(checks: list[Check]) -> Table:
    """Every check: what was expected, what the engine said."""
    shown = Table(title="Golden cases")
    for column in ("case", "at", "check", "expected", "got", ""):
        shown.add_column(column)
    for check in checks:
        verdict = "pass" if check.passed else "FAIL"
        shown.add_row(check.case, check.at, check.what, check.expected, check.got, verdict)
    return shown


def summary(checks: list[Check]) -> list[str]:
    """Why each failure scored as it did, then the count."""
    failed = [check for check in checks if not check.passed]
    cases = len({check.case for check in checks})
    return [
        *(f"FAIL {c.case} at {c.at}: {c.what}: points then: {c.breakdown}" for c in failed),
        f"{len(checks) - len(failed)} of {len(checks)} checks passed in {cases} cases",
    ]
