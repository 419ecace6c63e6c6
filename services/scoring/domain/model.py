"""The lead definitions compiled into a scoring model: rules, fit, grades, the stage ladder."""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from services.scoring.domain.history import StoredInteraction
from shared.definitions.model import (
    Decay,
    FitRule,
    LeadDefinitions,
    PointsRule,
    ScoringRule,
    StageEntry,
    grade_ranks,
    hand_off_stage,
)

DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class RuleHit:
    rule: int
    points: float
    cap_points: float | None
    cap_window: float
    entry_stage: int | None


@dataclass(frozen=True, slots=True)
class Reason:
    """A rule and the points it gave a lead; `label` is what a person reads."""

    rule: str
    label: str
    points: float


def _pattern(glob: str | None) -> re.Pattern[str] | None:
    return re.compile(fnmatch.translate(glob), re.IGNORECASE) if glob else None


def _matches(pattern: re.Pattern[str] | None, value: str | None) -> bool:
    return pattern is None or (value is not None and pattern.match(value) is not None)


@dataclass(frozen=True)
class _CompiledRule:
    rule: PointsRule
    campaign: re.Pattern[str] | None
    url: re.Pattern[str] | None
    asset: re.Pattern[str] | None
    network: re.Pattern[str] | None

    def matches(self, interaction: StoredInteraction) -> bool:
        match = self.rule.match
        return (
            (match.channel is None or match.channel == interaction.channel)
            and (match.type is None or match.type == interaction.type)
            and _matches(self.campaign, interaction.campaign)
            and _matches(self.url, interaction.url)
            and _matches(self.asset, interaction.asset)
            and _matches(self.network, interaction.network)
        )


def _fit_points(rule: FitRule, patterns: Sequence[re.Pattern[str]], value: Any) -> float:
    if value is None:
        return 0.0
    if rule.field == "company_size":
        size = float(value)
        fits = (rule.min is None or size >= rule.min) and (rule.max is None or size <= rule.max)
    else:
        fits = any(pattern.match(str(value)) for pattern in patterns)
    return rule.points if fits else 0.0


class ScoreRules:
    """One score's rules, caps, decay and fit, compiled: the main score, or a named one."""

    def __init__(
        self,
        definitions: LeadDefinitions,
        rules: Sequence[PointsRule],
        fit: Sequence[FitRule],
        decay: Decay,
        stage_index: Mapping[str, int] | None,
    ) -> None:
        """`stage_index`: the stages its rules and campaigns enter; None for a named score,
        which enters none."""
        self.definitions = definitions
        self.rules = tuple(rules)
        self.half_life = decay.half_life_days * DAY if decay.half_life_days else None
        self._stage_index = stage_index
        self._compiled = [
            _CompiledRule(
                rule,
                _pattern(rule.match.campaign),
                _pattern(rule.match.url),
                _pattern(rule.match.asset),
                _pattern(rule.match.network),
            )
            for rule in rules
        ]
        self._fit = [
            (rule, [re.compile(fnmatch.translate(p), re.IGNORECASE) for p in rule.any_of])
            for rule in fit
        ]
        # What the fit depends on: one lead's email or company is not another's, so a cache
        # keyed on every profile field would miss for every lead.
        self._fit_fields = sorted({rule.field for rule in fit})
        self._hits: dict[
            tuple[str, str, str | None, str | None, str | None, str | None], tuple[RuleHit, ...]
        ] = {}
        self._fit_cache: dict[tuple[Any, ...], tuple[float, dict[str, float]]] = {}

    def hits(self, interaction: StoredInteraction) -> tuple[RuleHit, ...]:
        """The rules an interaction earns points from, with the campaign's multiplier applied."""
        key = (
            interaction.channel,
            interaction.type,
            interaction.campaign,
            interaction.url,
            interaction.asset,
            interaction.network,
        )
        cached = self._hits.get(key)
        if cached is None:
            cached = self._hits[key] = self._rule_hits(interaction)
        return cached

    def _rule_hits(self, interaction: StoredInteraction) -> tuple[RuleHit, ...]:
        campaign = self.definitions.campaigns.get(interaction.campaign or "")
        multiplier = campaign.multiplier if campaign else 1.0
        hits = [
            RuleHit(
                index,
                compiled.rule.points * multiplier,
                compiled.rule.cap.points if compiled.rule.cap else None,
                compiled.rule.cap.window_days * DAY if compiled.rule.cap else 0.0,
                self._entry_stage(compiled.rule),
            )
            for index, compiled in enumerate(self._compiled)
            if compiled.matches(interaction)
        ]
        if campaign and campaign.entry_stage and self._stage_index is not None:
            hits.append(RuleHit(-1, 0.0, None, 0.0, self._stage_index[campaign.entry_stage]))
        return tuple(hits)

    def _entry_stage(self, rule: PointsRule) -> int | None:
        if self._stage_index is None or not isinstance(rule, ScoringRule) or not rule.entry_stage:
            return None
        return self._stage_index[rule.entry_stage]

    def fit(self, profile: Mapping[str, Any]) -> tuple[float, dict[str, float]]:
        """Profile points of a contact: the sum of the fit rules its fields match."""
        key = tuple(profile.get(name) for name in self._fit_fields)
        cached = self._fit_cache.get(key)
        if cached is None:
            by_rule = {
                rule.key: points
                for rule, patterns in self._fit
                if (points := _fit_points(rule, patterns, profile.get(rule.field)))
            }
            cached = self._fit_cache[key] = (sum(by_rule.values()), by_rule)
        return cached

    def decay(self, value: float, seconds: float) -> float:
        if self.half_life is None or seconds <= 0 or value == 0:
            return value
        factor: float = 0.5 ** (seconds / self.half_life)
        return value * factor


class ScoringModel:
    """The definitions compiled for fast, repeated evaluation of many leads."""

    def __init__(self, definitions: LeadDefinitions) -> None:
        self.definitions = definitions
        self.stage_keys = [stage.key for stage in definitions.stages]
        self.stage_index = {key: index for index, key in enumerate(self.stage_keys)}
        scoring = definitions.scoring
        self.main = ScoreRules(
            definitions, scoring.rules, scoring.fit, scoring.decay, self.stage_index
        )
        self.named = {
            named.key: ScoreRules(definitions, named.rules, named.fit, named.decay, None)
            for named in definitions.scores
        }
        self.half_life = self.main.half_life
        self.hand_off = self.stage_index[hand_off_stage(definitions).key]
        self.grade_rank = grade_ranks(definitions)
        # Automatic stages up to the hand-off: after it, sales moves the lead.
        self._automatic = [
            (index, stage.entry)
            for index, stage in enumerate(definitions.stages)
            if stage.entry.automatic and index <= self.hand_off
        ]
        self._automatic_furthest_first = list(reversed(self._automatic))
        # Whether any stage's criteria name scores (`all_of`, `any_of`).
        self.combines_scores = any(e.all_of or e.any_of for _, e in self._automatic)
        # The stages a lead climbs by itself, up to the hand-off: key -> index.
        self.ladder = {self.stage_keys[index]: index for index, _ in self._automatic}
        # The least score any stage past index i asks for (0 if one asks for no score):
        # below it, there is nothing to check.
        self.score_needed_past = [
            min(
                (e.score if e.score is not None else -math.inf)
                for index, e in self._automatic
                if index > above
            )
            if any(index > above for index, _ in self._automatic)
            else math.inf
            for above in range(-1, len(self.stage_keys))
        ]
        self.thresholds = sorted(
            {entry.score for _, entry in self._automatic if entry.score is not None}
        )
        # Each named score's thresholds: those it declares, and the minimums stages ask of it.
        self.named_thresholds = {
            named.key: sorted(
                {
                    *named.thresholds,
                    *(
                        minimum
                        for _, entry in self._automatic
                        for name, minimum in (*entry.all_of.items(), *entry.any_of.items())
                        if name == named.key
                    ),
                }
            )
            for named in definitions.scores
        }
        self.score_names = {named.key: named.name for named in definitions.scores}

    def hits(self, interaction: StoredInteraction) -> tuple[RuleHit, ...]:
        """The main score's rules an interaction earns points from (see `ScoreRules.hits`)."""
        return self.main.hits(interaction)

    def fit(self, profile: Mapping[str, Any]) -> tuple[float, dict[str, float]]:
        """The main score's profile points of a contact (see `ScoreRules.fit`)."""
        return self.main.fit(profile)

    def grade(self, score: float, fit: float) -> str:
        """The grade band the (score, fit) pair falls in, else the default grade."""
        for band in self.definitions.grades.bands:
            if band.score.contains(score) and band.fit.contains(fit):
                return band.grade
        return self.definitions.grades.default

    def qualifying_stage(
        self,
        score: float,
        fit: float,
        profile: Mapping[str, Any],
        above: int,
        highest: int,
        levels: Mapping[str, float] | None = None,
    ) -> int | None:
        """The furthest automatic stage past `above`, up to `highest`, whose criteria hold.
        `levels`: every score stage criteria may name (needed when `combines_scores`)."""
        grade_rank: int | None = None
        for index, entry in self._automatic_furthest_first:
            if index <= above:
                return None
            if index > highest:
                continue
            if entry.score is not None and score < entry.score:
                continue
            if any(profile.get(name) in (None, "") for name in entry.required_fields):
                continue
            if (entry.all_of or entry.any_of) and not _scores_suffice(entry, levels or {}):
                continue
            if entry.grade is not None:
                if grade_rank is None:
                    grade_rank = self.grade_rank[self.grade(score, fit)]
                if grade_rank > self.grade_rank[entry.grade]:
                    continue
            return index
        return None

    def passed_through(self, since: int, reached: int) -> list[int]:
        """The automatic stages a lead skipped going from `since` straight to `reached`."""
        return [index for index in self.ladder.values() if since < index < reached]

    def decay(self, value: float, seconds: float) -> float:
        """The main score's behaviour points `seconds` later."""
        return self.main.decay(value, seconds)


def _scores_suffice(entry: StageEntry, levels: Mapping[str, float]) -> bool:
    """Every `all_of` score at its minimum, and at least one `any_of` score at its minimum."""
    return all(levels[name] >= minimum for name, minimum in entry.all_of.items()) and (
        not entry.any_of or any(levels[name] >= minimum for name, minimum in entry.any_of.items())
    )
