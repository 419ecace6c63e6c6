"""Calibration from sales' feedback: how sales treated the leads that each definitions
version, campaign, source channel, grade and scoring rule brought them, and the changes to
the definitions those verdicts suggest.

A hand-off's verdict is *accepted* once a rep accepted it (whatever came after), else
*returned* once a rep sent it back to nurture, else *pending*. Acceptance is accepted out
of accepted + returned; opportunity and won rates are out of every hand-off. Each rate
comes with its 95% Wilson score interval, so that a rule with five verdicts is not read
as surely as one with five hundred.
"""

from __future__ import annotations

import copy
import difflib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from math import sqrt
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from shared.definitions.model import LeadDefinitions, hand_off_stage
from shared.paths import DocumentPath, field_path

Z_95 = 1.959963984540054  # the normal quantile of a two-sided 95% interval
MIN_VERDICTS = 5  # fewer verdicts than this suggest nothing, however bad they look

Verdict = Literal["accepted", "returned", "pending"]


@dataclass(frozen=True)
class HandOffOutcome:
    """A lead handed off to sales, as it was handed off, and what sales did with it."""

    lead_id: str
    definitions_version: str | None
    campaigns: tuple[str, ...]
    source_channel: str | None
    grade: str | None
    score: float | None
    rules: tuple[str, ...]  # the rules that gave it the most points at the hand-off
    accepted: bool
    return_reason: str | None  # why it was last sent back to nurture, if it was
    converted: bool
    won: bool

    @property
    def verdict(self) -> Verdict:
        if self.accepted:
            return "accepted"
        return "returned" if self.return_reason is not None else "pending"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, serialize_by_alias=True, validate_by_name=True)


class Rate(_Frozen):
    rate: float
    low: float = Field(description="lower end of the 95% Wilson score interval")
    high: float = Field(description="upper end of the 95% Wilson score interval")


def wilson_interval(successes: int, trials: int) -> Rate | None:
    """The share of successes, and the range the true share lies in with 95% confidence
    (Wilson score interval): wide for a few trials, narrow for many. None without trials."""
    if trials == 0:
        return None
    share = successes / trials
    spread = Z_95 * Z_95 / trials
    centre = (share + spread / 2) / (1 + spread)
    margin = Z_95 * sqrt(share * (1 - share) / trials + spread / (4 * trials)) / (1 + spread)
    return Rate(
        rate=round(share, 4),
        low=round(max(0.0, centre - margin), 4),
        high=round(min(1.0, centre + margin), 4),
    )


class CalibrationRow(_Frozen):
    """What sales did with the hand-offs of one version, campaign, channel, grade or rule."""

    key: str
    handed_off: int
    accepted: int
    returned: int = Field(description="sent back to nurture, never accepted")
    pending: int = Field(description="neither accepted nor returned yet")
    acceptance: Rate | None = Field(description="accepted / (accepted + returned)")
    return_reasons: dict[str, int] = Field(description="returned leads by reason, most first")
    opportunities: int = Field(description="converted to an opportunity")
    opportunity_rate: Rate | None = Field(description="opportunities / handed_off")
    won: int
    won_rate: Rate | None = Field(description="won / handed_off")


def calibration_row(key: str, outcomes: Sequence[HandOffOutcome]) -> CalibrationRow:
    """What sales did with these hand-offs: verdicts, why they came back, what they became."""
    verdicts = Counter(outcome.verdict for outcome in outcomes)
    reasons = Counter(o.return_reason for o in outcomes if o.verdict == "returned")
    opportunities = sum(1 for outcome in outcomes if outcome.converted)
    won = sum(1 for outcome in outcomes if outcome.won)
    return CalibrationRow(
        key=key,
        handed_off=len(outcomes),
        accepted=verdicts["accepted"],
        returned=verdicts["returned"],
        pending=verdicts["pending"],
        acceptance=wilson_interval(
            verdicts["accepted"], verdicts["accepted"] + verdicts["returned"]
        ),
        return_reasons={str(reason): count for reason, count in reasons.most_common()},
        opportunities=opportunities,
        opportunity_rate=wilson_interval(opportunities, len(outcomes)),
        won=won,
        won_rate=wilson_interval(won, len(outcomes)),
    )


# The keys a hand-off counts under in each breakdown (a lead of two campaigns counts in both).
DIMENSIONS: dict[str, Callable[[HandOffOutcome], Iterable[str]]] = {
    "definitions_version": lambda o: [o.definitions_version or "(unknown)"],
    "campaign": lambda o: o.campaigns or ["(none)"],
    "source_channel": lambda o: [o.source_channel or "(unknown)"],
    "grade": lambda o: [o.grade or "(none)"],
    "rule": lambda o: dict.fromkeys(o.rules) or ["(none)"],
}


def breakdown(
    outcomes: Iterable[HandOffOutcome], keys_of: Callable[[HandOffOutcome], Iterable[str]]
) -> list[CalibrationRow]:
    """One row per key, by key."""
    grouped: dict[str, list[HandOffOutcome]] = {}
    for outcome in outcomes:
        for key in keys_of(outcome):
            grouped.setdefault(key, []).append(outcome)
    return [calibration_row(key, grouped[key]) for key in sorted(grouped)]


class DefinitionsChange(_Frozen):
    path: str = Field(description="where in the definitions document, e.g. scoring.rules[4].points")
    before: float = Field(alias="from")
    after: float = Field(alias="to")


class Suggestion(_Frozen):
    kind: Literal["rule_points", "hand_off_threshold"]
    message: str
    evidence: dict[str, float | int | str | None]
    changes: list[DefinitionsChange]
    candidate_document: str = Field(
        description="the complete candidate definitions (YAML), the active ones with the "
        "changes: post it as `document` to scoring's /v1/definitions/shadow"
    )
    diff: str = Field(description="unified diff from the active definitions to the candidate")


def _suggestion(
    definitions: LeadDefinitions,
    kind: Literal["rule_points", "hand_off_threshold"],
    message: str,
    evidence: dict[str, float | int | str | None],
    changes: Sequence[tuple[DocumentPath, float, float]],
) -> Suggestion:
    """The suggestion with its candidate: the active definitions as dumped, changed."""
    active = definitions.model_dump(mode="json")
    candidate = copy.deepcopy(active)
    for path, _, value in changes:
        *parents, last = path
        node: Any = candidate
        for part in parents:
            node = node[part]
        node[last] = value
    active_text = yaml.safe_dump(active, sort_keys=False, allow_unicode=True)
    candidate_text = yaml.safe_dump(candidate, sort_keys=False, allow_unicode=True)
    diff = difflib.unified_diff(
        active_text.splitlines(keepends=True),
        candidate_text.splitlines(keepends=True),
        fromfile="active",
        tofile="candidate",
    )
    return Suggestion(
        kind=kind,
        message=message,
        evidence=evidence,
        changes=[
            DefinitionsChange(path=field_path(path), before=before, after=after)
            for path, before, after in changes
        ],
        candidate_document=candidate_text,
        diff="".join(diff),
    )


def _rule_path(definitions: LeadDefinitions, key: str) -> tuple[DocumentPath, float] | None:
    """Where a scoring or fit rule is in the document (the main score's first), its points."""
    lists: list[tuple[DocumentPath, Sequence[Any]]] = [
        (("scoring", "rules"), definitions.scoring.rules),
        (("scoring", "fit"), definitions.scoring.fit),
    ]
    for index, score in enumerate(definitions.scores):
        lists += [(("scores", index, "rules"), score.rules), (("scores", index, "fit"), score.fit)]
    for where, rules in lists:
        for position, rule in enumerate(rules):
            if rule.key == key:
                return (*where, position, "points"), rule.points
    return None


def _percent(share: float) -> str:
    return f"{round(100 * share)}%"


def _with_interval(acceptance: Rate) -> str:
    low, high = _percent(acceptance.low), _percent(acceptance.high)
    return f"{_percent(acceptance.rate)}, 95% interval {low} to {high}"


def _rule_suggestions(
    definitions: LeadDefinitions, overall: Rate, by_rule: Sequence[CalibrationRow]
) -> list[Suggestion]:
    """Halve the points of each rule whose hand-offs sales accepts surely less than the
    average: even the top of its interval is below the overall acceptance rate."""
    suggestions = []
    for row in sorted(by_rule, key=lambda r: (r.acceptance.rate if r.acceptance else 1, r.key)):
        acceptance, verdicts = row.acceptance, row.accepted + row.returned
        if acceptance is None or verdicts < MIN_VERDICTS or acceptance.high >= overall.rate:
            continue
        found = _rule_path(definitions, row.key)
        if found is None or found[1] <= 0:
            continue  # a rule the definitions no longer have, or a penalty
        path, points = found
        halved = round(points / 2, 2)
        message = (
            f"Sales accepted {row.accepted} of the {verdicts} hand-offs with rule '{row.key}' "
            f"among their top reasons ({_with_interval(acceptance)}), against "
            f"{_percent(overall.rate)} overall: halve its points from {points:g} to {halved:g}."
        )
        evidence: dict[str, float | int | str | None] = {
            "rule": row.key,
            "verdicts": verdicts,
            "accepted": row.accepted,
            "acceptance": acceptance.rate,
            "acceptance_low": acceptance.low,
            "acceptance_high": acceptance.high,
            "overall_acceptance": overall.rate,
        }
        suggestions.append(
            _suggestion(definitions, "rule_points", message, evidence, [(path, points, halved)])
        )
    return suggestions


def _threshold_suggestion(
    definitions: LeadDefinitions,
    outcomes: Sequence[HandOffOutcome],
    overall: Rate,
    target: float,
) -> Suggestion | None:
    """The lowest hand-off score, among those leads with a verdict were handed off at, from
    which acceptance reaches the target: handing off only from there. None when the target
    is met already, when no score with enough verdicts above it reaches it, or when the
    hand-off has no score threshold to raise (it goes by grade or named scores)."""
    judged = [
        (float(o.score), o.verdict == "accepted")
        for o in outcomes
        if o.score is not None and o.verdict != "pending"
    ]
    hand_off = hand_off_stage(definitions)
    stage_index = definitions.stages.index(hand_off)
    current = hand_off.entry.score
    if current is None or overall.rate >= target:
        return None
    for threshold in sorted({score for score, _ in judged}):
        above = [accepted for score, accepted in judged if score >= threshold]
        if len(above) < MIN_VERDICTS:
            return None
        acceptance = wilson_interval(sum(above), len(above))
        if acceptance is None or acceptance.rate < target:
            continue
        if threshold <= current:
            return None  # the leads below it came in by another way (a rule's entry stage)
        message = (
            f"Of the leads handed off with a score of {threshold:g} or more, sales accepted "
            f"{sum(above)} of {len(above)} ({_with_interval(acceptance)}), reaching the "
            f"{_percent(target)} target ({_percent(overall.rate)} overall): hand off to "
            f"'{hand_off.key}' from a score of {threshold:g} instead of {current:g}."
        )
        evidence: dict[str, float | int | str | None] = {
            "threshold": threshold,
            "verdicts_at_or_above": len(above),
            "accepted_at_or_above": sum(above),
            "acceptance": acceptance.rate,
            "acceptance_low": acceptance.low,
            "acceptance_high": acceptance.high,
            "overall_acceptance": overall.rate,
            "target": target,
        }
        path: DocumentPath = ("stages", stage_index, "entry", "score")
        return _suggestion(
            definitions, "hand_off_threshold", message, evidence, [(path, current, threshold)]
        )
    return None


class CalibrationReport(_Frozen):
    """How sales treated the hand-offs of a period, broken down, and what to change."""

    start: datetime
    end: datetime
    target: float = Field(description="the acceptance rate the team wants")
    overall: CalibrationRow
    by_definitions_version: list[CalibrationRow]
    by_campaign: list[CalibrationRow] = Field(description="a lead counts in each campaign")
    by_source_channel: list[CalibrationRow]
    by_grade: list[CalibrationRow]
    by_rule: list[CalibrationRow] = Field(
        description="a lead counts for each rule among its top reasons at the hand-off"
    )
    suggestions: list[Suggestion]


def calibration_report(
    outcomes: Sequence[HandOffOutcome],
    definitions: LeadDefinitions,
    start: datetime,
    end: datetime,
    target: float,
) -> CalibrationReport:
    """Acceptance, returns and conversions of the hand-offs, overall and per version,
    campaign, channel, grade and rule; changes that would bring acceptance to `target`."""
    overall = calibration_row("all", outcomes)
    by_rule = breakdown(outcomes, DIMENSIONS["rule"])
    suggestions: list[Suggestion] = []
    if overall.acceptance is not None:
        suggestions += _rule_suggestions(definitions, overall.acceptance, by_rule)
        threshold = _threshold_suggestion(definitions, outcomes, overall.acceptance, target)
        suggestions += [threshold] if threshold else []
    return CalibrationReport(
        start=start,
        end=end,
        target=target,
        overall=overall,
        by_definitions_version=breakdown(outcomes, DIMENSIONS["definitions_version"]),
        by_campaign=breakdown(outcomes, DIMENSIONS["campaign"]),
        by_source_channel=breakdown(outcomes, DIMENSIONS["source_channel"]),
        by_grade=breakdown(outcomes, DIMENSIONS["grade"]),
        by_rule=by_rule,
        suggestions=suggestions,
    )


class CalibrationCsvRow(BaseModel):
    """A row of the report flattened for a spreadsheet: the intervals as columns."""

    key: str
    handed_off: int
    accepted: int
    returned: int
    pending: int
    acceptance_rate: float | None
    acceptance_low: float | None
    acceptance_high: float | None
    return_reasons: str = Field(description="reason: count; ...")
    opportunities: int
    opportunity_rate: float | None
    opportunity_low: float | None
    opportunity_high: float | None
    won: int
    won_rate: float | None
    won_low: float | None
    won_high: float | None


def _columns(name: str, rate: Rate | None) -> dict[str, float | None]:
    return {
        f"{name}_rate": rate.rate if rate else None,
        f"{name}_low": rate.low if rate else None,
        f"{name}_high": rate.high if rate else None,
    }


def _csv_row(row: CalibrationRow) -> CalibrationCsvRow:
    return CalibrationCsvRow(
        key=row.key,
        handed_off=row.handed_off,
        accepted=row.accepted,
        returned=row.returned,
        pending=row.pending,
        return_reasons="; ".join(f"{key}: {count}" for key, count in row.return_reasons.items()),
        opportunities=row.opportunities,
        won=row.won,
        **_columns("acceptance", row.acceptance),
        **_columns("opportunity", row.opportunity_rate),
        **_columns("won", row.won_rate),
    )


def calibration_sections(report: CalibrationReport) -> dict[str, list[BaseModel]]:
    """The report's rows as CSV sections, one per dimension (`overall` first)."""
    sections: dict[str, list[BaseModel]] = {"overall": [_csv_row(report.overall)]}
    for dimension in DIMENSIONS:
        sections[dimension] = [_csv_row(row) for row in getattr(report, f"by_{dimension}")]
    return sections
