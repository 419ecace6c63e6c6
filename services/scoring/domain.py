"""The scoring engine: a lead's score, fit, grade and stage from its interactions.

Pure: the result is a function of (definitions, the lead's interactions ordered by event
time, the time it is evaluated at). No database, no broker, no clock.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from operator import attrgetter
from typing import Any

from shared.definitions.model import (
    FitRule,
    LeadDefinitions,
    ScoringRule,
    grade_ranks,
    hand_off_stage,
)

DAY = 86_400.0
PROFILE_FIELDS = ("company", "job_title", "industry", "company_size", "country", "email")


@dataclass(frozen=True, slots=True)
class StoredInteraction:
    """What scoring needs of one stored interaction. `time` is in epoch seconds."""

    event_id: str
    time: float
    channel: str
    type: str
    campaign: str | None = None
    url: str | None = None
    asset: str | None = None
    network: str | None = None
    profile: Mapping[str, Any] | None = None

    @property
    def order(self) -> tuple[float, str]:
        return (self.time, self.event_id)


@dataclass(frozen=True, slots=True)
class Return:
    """Sales sent the lead back to marketing at `time` (epoch seconds)."""

    event_id: str
    time: float
    stage: str
    resets_score: bool
    eligible_again: float | None  # None: never handed off again (disqualified)


@dataclass(frozen=True, slots=True)
class RuleHit:
    rule: int
    points: float
    cap_points: float | None
    cap_window: float
    entry_stage: int | None


@dataclass(frozen=True)
class StageReached:
    """The lead entered `stage` (from `previous`) because of the interaction `event_id`.

    `cycle` counts the returns to nurture before it: a lead may climb the funnel again
    after sales sent it back, and each climb reports its stages anew.
    """

    stage: str
    previous: str | None
    time: float
    event_id: str | None
    score: float
    grade: str
    reason: str
    cycle: int = 0
    # What was known of the person at that moment: what the hand-off carries to the router.
    profile: Mapping[str, Any] = field(default_factory=dict, compare=False)
    campaigns: tuple[str, ...] = field(default=(), compare=False)
    source_channel: str | None = field(default=None, compare=False)

    @property
    def report_key(self) -> str:
        """What identifies this stage entry among everything reported of the lead."""
        return f"{self.cycle}:{self.stage}"


@dataclass(frozen=True)
class Evaluation:
    score: float
    engagement: float
    fit: float
    grade: str
    stage: str | None
    stages_reached: tuple[StageReached, ...]
    thresholds_met: frozenset[float]
    last_event_time: float | None
    profile: Mapping[str, Any]
    points_by_rule: Mapping[str, float] = field(default_factory=dict)
    decayed_by_rule: Mapping[str, float] = field(default_factory=dict)
    fit_by_rule: Mapping[str, float] = field(default_factory=dict)
    hand_off_blocked_until: float | None = None
    cycle: int = 0
    campaigns: tuple[str, ...] = ()
    source_channel: str | None = None


def _pattern(glob: str | None) -> re.Pattern[str] | None:
    return re.compile(fnmatch.translate(glob), re.IGNORECASE) if glob else None


def _matches(pattern: re.Pattern[str] | None, value: str | None) -> bool:
    return pattern is None or (value is not None and pattern.match(value) is not None)


@dataclass(frozen=True)
class _CompiledRule:
    rule: ScoringRule
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


class ScoringModel:
    """The definitions compiled for fast, repeated evaluation of many leads."""

    def __init__(self, definitions: LeadDefinitions) -> None:
        self.definitions = definitions
        half_life = definitions.scoring.decay.half_life_days
        self.half_life = half_life * DAY if half_life else None
        self._rules = [
            _CompiledRule(
                rule,
                _pattern(rule.match.campaign),
                _pattern(rule.match.url),
                _pattern(rule.match.asset),
                _pattern(rule.match.network),
            )
            for rule in definitions.scoring.rules
        ]
        self._fit = [
            (rule, [re.compile(fnmatch.translate(p), re.IGNORECASE) for p in rule.any_of])
            for rule in definitions.scoring.fit
        ]
        self.stage_keys = [stage.key for stage in definitions.stages]
        self.stage_index = {key: index for index, key in enumerate(self.stage_keys)}
        self.hand_off = self.stage_index[hand_off_stage(definitions).key]
        self.grade_rank = grade_ranks(definitions)
        # Automatic stages up to the hand-off: after it, sales moves the lead.
        self._automatic = [
            (index, stage.entry)
            for index, stage in enumerate(definitions.stages)
            if stage.entry.automatic and index <= self.hand_off
        ]
        self._automatic_furthest_first = list(reversed(self._automatic))
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
        campaign_stage = (
            self.stage_index[campaign.entry_stage] if campaign and campaign.entry_stage else None
        )
        hits = [
            RuleHit(
                index,
                compiled.rule.points * multiplier,
                compiled.rule.cap.points if compiled.rule.cap else None,
                compiled.rule.cap.window_days * DAY if compiled.rule.cap else 0.0,
                self.stage_index[compiled.rule.entry_stage] if compiled.rule.entry_stage else None,
            )
            for index, compiled in enumerate(self._rules)
            if compiled.matches(interaction)
        ]
        if campaign_stage is not None:
            hits.append(RuleHit(-1, 0.0, None, 0.0, campaign_stage))
        return tuple(hits)

    def fit(self, profile: Mapping[str, Any]) -> tuple[float, dict[str, float]]:
        """Profile points of a contact: the sum of the fit rules its fields match."""
        key = tuple(profile.get(name) for name in PROFILE_FIELDS)
        cached = self._fit_cache.get(key)
        if cached is None:
            by_rule = {
                rule.key: points
                for rule, patterns in self._fit
                if (points := _fit_points(rule, patterns, profile.get(rule.field)))
            }
            cached = self._fit_cache[key] = (sum(by_rule.values()), by_rule)
        return cached

    def grade(self, score: float, fit: float) -> str:
        """The grade band the (score, fit) pair falls in, else the default grade."""
        for band in self.definitions.grades.bands:
            if band.score.contains(score) and band.fit.contains(fit):
                return band.grade
        return self.definitions.grades.default

    def qualifying_stage(
        self, score: float, fit: float, profile: Mapping[str, Any], above: int, highest: int
    ) -> int | None:
        """The furthest automatic stage past `above`, up to `highest`, whose criteria hold."""
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
        if self.half_life is None or seconds <= 0 or value == 0:
            return value
        factor: float = 0.5 ** (seconds / self.half_life)
        return value * factor


_by_event_time = attrgetter("time", "event_id")


def score_as_of(now: float, interactions: Sequence[StoredInteraction]) -> float:
    """A lead is scored as of now, or as of its latest interaction if one is dated later."""
    return max(now, max((item.time for item in interactions), default=now))


def evaluate(
    model: ScoringModel,
    interactions: Sequence[StoredInteraction],
    as_of: float,
    *,
    returns: Sequence[Return] = (),
    explain: bool = False,
) -> Evaluation:
    """Score a lead: replay its interactions in event-time order up to `as_of`.

    Behaviour points decay with the half-life from each interaction's own time; a rule's
    cap limits the points it gives in any window; fit points come from the latest known
    contact fields. The stage is the furthest one the lead ever qualified for (stages do
    not move backwards when points decay), and never beyond the hand-off. When sales
    returned the lead, it starts climbing again from the stage it was returned to, and
    may not be handed off again before its cool-off ends (a disqualified lead, never).
    """
    timeline: list[Any] = sorted(interactions, key=_by_event_time)
    if returns:
        timeline = _with_returns(timeline, returns)
    if timeline and _time_of(timeline[-1]) > as_of:
        timeline = [item for item in timeline if _time_of(item) <= as_of]
    replay = _Replay(model, as_of, explain)
    for item in timeline:
        if type(item) is StoredInteraction:
            replay.decay_to(item.time)
            replay.climb(item.time, replay.interact(item), item.event_id)
        else:
            time, kind, sent_back = item
            replay.decay_to(time)
            if kind == _RETURNED:
                replay.send_back(sent_back)
            else:
                replay.climb(time, -1, None)
    return replay.result()


class _Replay:
    """The state of one lead while its history is replayed."""

    def __init__(self, model: ScoringModel, as_of: float, explain: bool) -> None:
        self.model = model
        self.as_of = as_of
        self.explain = explain
        self.engagement = 0.0
        self.last_time: float | None = None
        self.profile: dict[str, Any] = {}
        self.campaigns: set[str] = set()
        self.source_channel: str | None = None
        self.fit, self.fit_by_rule = model.fit(self.profile)
        self.stage = -1
        self.cycle = 0
        self.returned_to: str | None = None
        self.blocked_until = -math.inf
        self.reached: list[StageReached] = []
        self.awarded: dict[int, _CapWindow] = {}
        self.points_by_rule: dict[str, float] = {}
        self.decayed_by_rule: dict[str, float] = {}

    def decay_to(self, now: float) -> None:
        if self.last_time is not None:
            self.engagement = self.model.decay(self.engagement, now - self.last_time)
        self.last_time = now

    def _stage_key(self) -> str | None:
        return self.model.stage_keys[self.stage] if self.stage >= 0 else self.returned_to

    def interact(self, interaction: StoredInteraction) -> int:
        """Add the interaction's points; answer the stage it enters directly (-1: none)."""
        if self.source_channel is None:
            self.source_channel = interaction.channel
        if interaction.campaign:
            self.campaigns.add(interaction.campaign)
        if interaction.profile:
            self.profile.update(
                {k: v for k, v in interaction.profile.items() if v not in (None, "")}
            )
            self.fit, self.fit_by_rule = self.model.fit(self.profile)
        entry_stage = -1
        for hit in self.model.hits(interaction):
            points = hit.points
            if hit.cap_points is not None:
                window = self.awarded.get(hit.rule)
                if window is None:
                    window = self.awarded[hit.rule] = _CapWindow()
                points = window.allow(hit.cap_points, hit.cap_window, interaction.time, points)
            self.engagement += points
            if hit.entry_stage is not None and hit.entry_stage > entry_stage:
                entry_stage = hit.entry_stage
            if self.explain and hit.rule >= 0 and points:
                self._explain(hit.rule, points, interaction.time)
        return entry_stage

    def _explain(self, rule: int, points: float, time: float) -> None:
        key = self.model.definitions.scoring.rules[rule].key
        self.points_by_rule[key] = self.points_by_rule.get(key, 0.0) + points
        decayed = self.model.decay(points, self.as_of - time)
        self.decayed_by_rule[key] = self.decayed_by_rule.get(key, 0.0) + decayed

    def climb(self, now: float, entry_stage: int, event_id: str | None) -> None:
        """Move to the furthest stage the lead now qualifies for, if it is further."""
        model = self.model
        highest = model.hand_off if now >= self.blocked_until else model.hand_off - 1
        entry_stage = min(entry_stage, highest)
        score = self.engagement + self.fit
        above = max(self.stage, entry_stage)
        qualifying = (
            model.qualifying_stage(score, self.fit, self.profile, above, highest)
            if score >= model.score_needed_past[above + 1]
            else None
        )
        candidate = max(entry_stage, qualifying if qualifying is not None else -1)
        if candidate > self.stage:
            # A lead that skips stages is counted as having passed them at that moment, so
            # each stage of the funnel counts every lead that went beyond it.
            for passed in model.passed_through(self.stage, candidate):
                self._reach(model.stage_keys[passed], now, event_id, "passed_through")
                self.stage = passed
            reason = "criteria" if candidate == qualifying else "entry_stage"
            self._reach(model.stage_keys[candidate], now, event_id, reason)
            self.stage = candidate

    def send_back(self, sent_back: Return) -> None:
        self._reach(sent_back.stage, sent_back.time, sent_back.event_id, "returned")
        self.stage, self.returned_to = -1, sent_back.stage
        self.cycle += 1
        eligible = sent_back.eligible_again
        self.blocked_until = eligible if eligible is not None else math.inf
        if sent_back.resets_score:
            self.engagement = 0.0
            self.awarded.clear()

    def _reach(self, stage: str, now: float, event_id: str | None, reason: str) -> None:
        score = self.engagement + self.fit
        grade = self.model.grade(score, self.fit)
        self.reached.append(
            StageReached(
                stage,
                self._stage_key(),
                now,
                event_id,
                score,
                grade,
                reason,
                self.cycle,
                dict(self.profile),
                tuple(sorted(self.campaigns)),
                self.source_channel,
            )
        )

    def result(self) -> Evaluation:
        model = self.model
        last_time = self.last_time
        engagement = (
            model.decay(self.engagement, self.as_of - last_time) if last_time is not None else 0.0
        )
        score = engagement + self.fit
        return Evaluation(
            score=score,
            engagement=engagement,
            fit=self.fit,
            grade=model.grade(score, self.fit),
            stage=self._stage_key(),
            stages_reached=tuple(self.reached),
            thresholds_met=frozenset(t for t in model.thresholds if score >= t),
            last_event_time=last_time,
            profile=self.profile,
            points_by_rule=self.points_by_rule,
            decayed_by_rule=self.decayed_by_rule,
            fit_by_rule=self.fit_by_rule if self.explain else {},
            hand_off_blocked_until=(
                self.blocked_until if math.isfinite(self.blocked_until) else None
            ),
            cycle=self.cycle,
            campaigns=tuple(sorted(self.campaigns)),
            source_channel=self.source_channel,
        )


_RETURNED, _ELIGIBLE_AGAIN = 0, 1


def _time_of(item: Any) -> float:
    return float(item.time if type(item) is StoredInteraction else item[0])


def _with_returns(interactions: list[StoredInteraction], returns: Sequence[Return]) -> list[Any]:
    """The interactions, the moments sales returned the lead, and when each cool-off ends."""
    moments: list[tuple[float, int, Return]] = []
    for sent_back in returns:
        moments.append((sent_back.time, _RETURNED, sent_back))
        if sent_back.eligible_again is not None:
            moments.append((sent_back.eligible_again, _ELIGIBLE_AGAIN, sent_back))
    moments.sort(key=lambda moment: (moment[0], moment[1], moment[2].event_id))
    merged: list[Any] = []
    position = 0
    for interaction in interactions:
        while position < len(moments) and moments[position][0] <= interaction.time:
            merged.append(moments[position])
            position += 1
        merged.append(interaction)
    merged.extend(moments[position:])
    return merged


class _CapWindow:
    """The points one capped rule gave within its window, kept as a running sum."""

    __slots__ = ("given", "history")

    def __init__(self) -> None:
        self.history: deque[tuple[float, float]] = deque()
        self.given = 0.0

    def allow(self, cap: float, window: float, time: float, points: float) -> float:
        """Points the rule may still give: its cap minus what it gave in the last window."""
        history = self.history
        while history and history[0][0] <= time - window:
            self.given -= abs(history.popleft()[1])
        room = max(cap - self.given, 0.0)
        allowed = max(min(points, room), -room)
        if allowed:
            history.append((time, allowed))
            self.given += abs(allowed)
        return allowed


def seconds_until_below(
    model: ScoringModel, evaluation: Evaluation, threshold: float
) -> float | None:
    """How long until decay takes the score below `threshold`; None if it never will."""
    if model.half_life is None or evaluation.score < threshold:
        return None
    floor = threshold - evaluation.fit
    if evaluation.engagement <= 0 or floor <= 0:
        return None
    return model.half_life * math.log2(evaluation.engagement / floor)


@dataclass(frozen=True)
class ThresholdChange:
    threshold: float
    direction: str
    score: float
    grade: str


@dataclass(frozen=True)
class FunnelChanges:
    """What a new evaluation means for the funnel, and what is then known to be reported."""

    stages: list[StageReached]
    crossings: list[ThresholdChange]
    reported: frozenset[str]
    stage: str | None


def lifecycle_changes(
    model: ScoringModel,
    evaluation: Evaluation,
    reported: frozenset[str],
    previous_stage: str | None,
    previous_thresholds: frozenset[float],
    *,
    rescoring: bool = False,
) -> FunnelChanges:
    """The stage entries never reported before, and the thresholds crossed since last time.

    Every stage on the lead's path is reported once, in path order, whatever order its
    interactions arrived in: what was reported stays reported, and stages never move
    backwards (a late interaction that would have kept the lead lower changes its score,
    not its stage). Returns to nurture are the router's to report. A rescore under changed
    definitions reports only where the lead now stands, with the reason "rescored".
    """
    if rescoring:
        stages = []
        if evaluation.stage is not None and evaluation.stage != previous_stage:
            stages = [
                StageReached(
                    evaluation.stage,
                    previous_stage,
                    evaluation.last_event_time or 0.0,
                    None,
                    evaluation.score,
                    evaluation.grade,
                    "rescored",
                    evaluation.cycle,
                )
            ]
        path = frozenset(r.report_key for r in evaluation.stages_reached if r.reason != "returned")
        return FunnelChanges(
            stages, _crossings(evaluation, previous_thresholds), path, evaluation.stage
        )
    stages = [
        reached
        for reached in evaluation.stages_reached
        if reached.reason != "returned" and reached.report_key not in reported
    ]
    reported = reported | {reached.report_key for reached in stages}
    return FunnelChanges(
        stages,
        _crossings(evaluation, previous_thresholds),
        reported,
        standing_stage(model, evaluation, reported),
    )


def standing_stage(
    model: ScoringModel, evaluation: Evaluation, reported: frozenset[str]
) -> str | None:
    """Where the lead stands: the furthest stage reported in its current climb, or further."""
    ladder = model.ladder
    furthest = evaluation.stage
    prefix = f"{evaluation.cycle}:"
    for key in reported:
        stage = key.removeprefix(prefix)
        if (
            stage != key
            and stage in ladder
            and (furthest not in ladder or ladder[stage] > ladder[furthest])
        ):
            furthest = stage
    return furthest


def _crossings(
    evaluation: Evaluation, previous_thresholds: frozenset[float]
) -> list[ThresholdChange]:
    return [
        ThresholdChange(threshold, "up", evaluation.score, evaluation.grade)
        for threshold in sorted(evaluation.thresholds_met - previous_thresholds)
    ] + [
        ThresholdChange(threshold, "down", evaluation.score, evaluation.grade)
        for threshold in sorted(previous_thresholds - evaluation.thresholds_met, reverse=True)
    ]


def arrival_checkpoints(
    history: Sequence[StoredInteraction], arrived: Sequence[str]
) -> list[list[StoredInteraction]]:
    """The histories to evaluate in turn, so that what is reported of a lead depends on the
    order its interactions arrived in, never on how they were batched.

    `history` holds everything stored, `arrived` the ids of the new interactions in arrival
    order. Replaying in event time shows every stage a run of in-order arrivals reaches, so
    one evaluation covers such a run; an interaction dated before one already known may
    change the path, so the history as it stood before it arrived is evaluated first.
    """
    new = set(arrived)
    current = [item for item in history if item.event_id not in new]
    arriving = {item.event_id: item for item in history if item.event_id in new}
    latest = max((item.order for item in current), default=None)
    checkpoints = []
    unevaluated = False
    for event_id in dict.fromkeys(arrived):
        item = arriving.get(event_id)
        if item is None:
            continue
        if latest is not None and item.order < latest:
            if unevaluated:
                checkpoints.append(list(current))
        else:
            latest = item.order
        current.append(item)
        unevaluated = True
    checkpoints.append(current)
    return checkpoints


def report_arrivals(
    model: ScoringModel,
    history: Sequence[StoredInteraction],
    arrived: Sequence[str],
    now: float,
    *,
    returns: Sequence[Return] = (),
    reported: frozenset[str] = frozenset(),
    previous_stage: str | None = None,
    previous_thresholds: frozenset[float] = frozenset(),
) -> tuple[Evaluation, FunnelChanges]:
    """Score a lead whose interactions `arrived` (ids, in arrival order; all in `history`),
    and tell what that means for the funnel: every stage entry not reported before, in
    path order, and the thresholds crossed since the lead was last stored."""
    entries: list[StageReached] = []
    for checkpoint in arrival_checkpoints(history, arrived):
        evaluation = evaluate(model, checkpoint, score_as_of(now, checkpoint), returns=returns)
        changes = lifecycle_changes(
            model, evaluation, reported, previous_stage, previous_thresholds
        )
        reported = changes.reported
        entries += changes.stages
    return evaluation, replace(changes, stages=entries)
