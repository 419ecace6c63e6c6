"""Checks across sections of the lead definitions, each problem with its path.

Pydantic checks the shape; these check the meaning: references resolve, there is exactly
one hand-off, grade bands do not overlap, every stage threshold can be reached.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

from shared.definitions.model import (
    MAIN_SCORE_PARTS,
    Bounds,
    Decay,
    FitRule,
    LeadDefinitions,
    PointsRule,
)

Path = tuple[str | int, ...]
Problem = tuple[Path, str]


def _references(definitions: LeadDefinitions) -> Iterator[tuple[Path, str]]:
    """Every place that names a stage, with the stage it names."""
    for index, rule in enumerate(definitions.scoring.rules):
        if rule.entry_stage:
            yield ("scoring", "rules", index, "entry_stage"), rule.entry_stage
    for key, campaign in definitions.campaigns.items():
        if campaign.entry_stage:
            yield ("campaigns", key, "entry_stage"), campaign.entry_stage
    if definitions.nurture:
        for key, reason in definitions.nurture.reasons.items():
            yield ("nurture", "reasons", key, "stage"), reason.stage


def _stage_problems(definitions: LeadDefinitions) -> Iterator[Problem]:
    seen: dict[str, None] = {}  # ordered, for messages that list the stages
    for index, stage in enumerate(definitions.stages):
        if stage.key in seen:
            yield ("stages", index, "key"), f"stage {stage.key!r} is defined twice"
        seen[stage.key] = None
    automatic = {stage.key for stage in definitions.stages if stage.entry.automatic}
    for path, key in _references(definitions):
        if key not in seen:
            yield path, f"stage {key!r} is referenced but not defined (stages: {', '.join(seen)})"
        elif path[-1] == "entry_stage" and key not in automatic:
            yield path, f"stage {key!r} is entered by a sales action, so nothing can enter it here"
    hand_offs = [
        index
        for index, stage in enumerate(definitions.stages)
        if stage.owner == "sales" and stage.entry.automatic
    ]
    if not hand_offs:
        yield ("stages",), "no hand-off: one sales-owned stage must be entered by criteria"
    for index in hand_offs[1:]:
        first = definitions.stages[hand_offs[0]].key
        yield (
            ("stages", index, "entry"),
            f"two hand-off stages: {first!r} and {definitions.stages[index].key!r} are both "
            "sales-owned and entered by criteria; enter the later one by a sales action",
        )


def _overlap(first: Bounds, second: Bounds) -> bool:
    low = max(
        first.min if first.min is not None else -math.inf,
        second.min if second.min is not None else -math.inf,
    )
    high = min(
        first.max if first.max is not None else math.inf,
        second.max if second.max is not None else math.inf,
    )
    return low < high


def _grade_problems(definitions: LeadDefinitions) -> Iterator[Problem]:
    grades = definitions.grades
    known = [level.grade for level in grades.levels]

    def unknown(grade: str) -> str:
        return f"grade {grade!r} is not one of {', '.join(known)}"

    if len(set(known)) != len(known):
        yield ("grades", "levels"), "a grade is listed twice"
    if grades.default not in known:
        yield ("grades", "default"), unknown(grades.default)
    for index, band in enumerate(grades.bands):
        if band.grade not in known:
            yield ("grades", "bands", index, "grade"), unknown(band.grade)
        for earlier in range(index):
            other = grades.bands[earlier]
            if _overlap(band.score, other.score) and _overlap(band.fit, other.fit):
                yield (
                    ("grades", "bands", index),
                    f"overlaps grades.bands[{earlier}] ({other.grade}): a lead could have two "
                    "grades; make the score or fit ranges disjoint",
                )
    for index, stage in enumerate(definitions.stages):
        if stage.entry.grade and stage.entry.grade not in known:
            yield ("stages", index, "entry", "grade"), unknown(stage.entry.grade)
    if definitions.routing:
        for grade in definitions.routing.sla:
            if grade not in known:
                yield ("routing", "sla", grade), unknown(grade)


def _highest_behaviour(
    definitions: LeadDefinitions, rules: Sequence[PointsRule], decay: Decay
) -> float:
    """The most behaviour points any lead could hold: infinite unless every positive rule is
    capped and decays."""
    multiplier = max([1.0, *(campaign.multiplier for campaign in definitions.campaigns.values())])
    behaviour = 0.0
    for rule in rules:
        if rule.points <= 0:
            continue
        if rule.cap is None or decay.half_life_days is None:
            return math.inf
        # A cap refills every window while older points halve: a geometric series.
        refill = 1 - 0.5 ** (rule.cap.window_days / decay.half_life_days)
        behaviour += rule.cap.points * multiplier / refill
    return behaviour


def _highest_fit(fit: Sequence[FitRule]) -> float:
    return sum(rule.points for rule in fit if rule.points > 0)


def highest_reachable(definitions: LeadDefinitions) -> dict[str, float]:
    """The most any lead could score on each score stage criteria may name."""
    scoring = definitions.scoring
    engagement = _highest_behaviour(definitions, scoring.rules, scoring.decay)
    fit = _highest_fit(scoring.fit)
    ceilings = {"score": engagement + fit, "engagement": engagement, "fit": fit}
    for named in definitions.scores:
        behaviour = _highest_behaviour(definitions, named.rules, named.decay)
        ceilings[named.key] = behaviour + _highest_fit(named.fit)
    return ceilings


def _unreachable(minimum: float, ceiling: float, score: str) -> str:
    return (
        f"no lead can reach {minimum:g}: with these rules, caps and decay "
        f"the highest possible {score} is {ceiling:.1f}"
    )


def _threshold_problems(definitions: LeadDefinitions) -> Iterator[Problem]:
    ceilings = highest_reachable(definitions)
    for index, stage in enumerate(definitions.stages):
        if stage.entry.score is not None and stage.entry.score > ceilings["score"]:
            yield (
                ("stages", index, "entry", "score"),
                _unreachable(stage.entry.score, ceilings["score"], "score"),
            )
        for combined in ("all_of", "any_of"):
            for name, minimum in getattr(stage.entry, combined).items():
                ceiling = ceilings.get(name)
                if ceiling is not None and minimum > ceiling:
                    yield (
                        ("stages", index, "entry", combined, name),
                        _unreachable(minimum, ceiling, name),
                    )


def _named_score_problems(definitions: LeadDefinitions) -> Iterator[Problem]:
    """Named scores have keys of their own, and stage criteria name only known scores."""
    known: dict[str, None] = dict.fromkeys(MAIN_SCORE_PARTS)
    for index, named in enumerate(definitions.scores):
        if named.key in known:
            clash = "names a part of the main score" if named.key in MAIN_SCORE_PARTS else "twice"
            yield ("scores", index, "key"), f"score {named.key!r} {clash}: choose another key"
        known[named.key] = None
        for rules in ("rules", "fit"):
            keys = [rule.key for rule in getattr(named, rules)]
            for position, key in enumerate(keys):
                if key in keys[:position]:
                    yield ("scores", index, rules, position, "key"), f"rule {key!r} is there twice"
    for index, stage in enumerate(definitions.stages):
        for combined in ("all_of", "any_of"):
            for name in getattr(stage.entry, combined):
                if name not in known:
                    yield (
                        ("stages", index, "entry", combined, name),
                        f"score {name!r} is not defined (scores: {', '.join(known)})",
                    )


def problems(definitions: LeadDefinitions) -> list[Problem]:
    """Every meaning problem of well-shaped definitions, in document order."""
    return [
        *_stage_problems(definitions),
        *_grade_problems(definitions),
        *_named_score_problems(definitions),
        *_threshold_problems(definitions),
    ]
