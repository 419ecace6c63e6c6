"""One score's running totals on a lead's timeline (see `timeline`): the main score's, and
each named score's, kept by the same code."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from itertools import chain
from typing import Any

from services.scoring.domain.history import StoredInteraction
from services.scoring.domain.model import ScoreRules


class Tally:
    """One score's running totals on a lead's timeline: its behaviour points (decayed to the
    clock), what each capped rule gave within its window, each rule's share, its fit."""

    __slots__ = ("awarded", "engagement", "fit", "fit_by_rule", "rules", "totals")

    def __init__(self, rules: ScoreRules, profile: Mapping[str, Any]) -> None:
        self.rules = rules
        self.engagement = 0.0
        self.awarded: dict[int, _CapWindow] = {}
        # rule key -> [points given, points as decayed at `at`, at]
        self.totals: dict[str, list[float]] = {}
        self.fit, self.fit_by_rule = rules.fit(profile)

    def decay(self, seconds: float) -> None:
        self.engagement = self.rules.decay(self.engagement, seconds)

    def refit(self, profile: Mapping[str, Any]) -> None:
        self.fit, self.fit_by_rule = self.rules.fit(profile)

    def add(self, interaction: StoredInteraction, explain: bool) -> int:
        """Add the interaction's points; answer the stage it enters directly (-1: none)."""
        entry_stage = -1
        for hit in self.rules.hits(interaction):
            points = hit.points
            if hit.cap_points is not None:
                window = self.awarded.get(hit.rule)
                if window is None:
                    window = self.awarded[hit.rule] = _CapWindow()
                points = window.allow(hit.cap_points, hit.cap_window, interaction.time, points)
            self.engagement += points
            if hit.entry_stage is not None and hit.entry_stage > entry_stage:
                entry_stage = hit.entry_stage
            if explain and hit.rule >= 0 and points:
                self._explain(hit.rule, points, interaction.time)
        return entry_stage

    def _explain(self, rule: int, points: float, time: float) -> None:
        key = self.rules.rules[rule].key
        total = self.totals.get(key)
        if total is None:
            self.totals[key] = [points, points, time]
        else:
            total[0] += points
            total[1] = self.rules.decay(total[1], time - total[2]) + points
            total[2] = time

    def reset(self) -> None:
        self.engagement = 0.0
        self.awarded.clear()
        self.totals.clear()

    def engagement_at(self, as_of: float, clock: float | None) -> float:
        return self.rules.decay(self.engagement, as_of - clock) if clock is not None else 0.0

    def points_by_rule(self) -> dict[str, float]:
        return {key: total[0] for key, total in self.totals.items()}

    def decayed_by_rule(self, as_of: float) -> dict[str, float]:
        decay = self.rules.decay
        return {key: decay(decayed, as_of - at) for key, (_, decayed, at) in self.totals.items()}

    def snapshot(self) -> dict[str, Any]:
        return {
            "engagement": self.engagement,
            "caps": {
                str(rule): [window.given, list(chain.from_iterable(window.history))]
                for rule, window in self.awarded.items()
            },
            "totals": self.totals,
        }

    def restore(self, saved: Mapping[str, Any], profile: Mapping[str, Any]) -> None:
        self.engagement = saved["engagement"]
        self.refit(profile)
        for rule, (given, history) in saved["caps"].items():
            window = self.awarded[int(rule)] = _CapWindow()
            window.given = given
            window.history.extend(zip(history[::2], history[1::2], strict=True))
        self.totals = {key: list(total) for key, total in saved["totals"].items()}


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
