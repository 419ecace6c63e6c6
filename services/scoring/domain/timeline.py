"""A lead's timeline replayed: the state its score, stage and reasons follow from.

The state after one interaction is everything the next needs, so it is kept between
batches (`snapshot`, `restore`): an interaction later than every one before it costs O(1),
whatever the lead's history. Decay composes, S(t) = S(t0)·2^(-(t-t0)/h) + points, so the
engagement and each rule's share of it are running totals; a capped rule keeps only what
it gave within its window. Each named score keeps the same totals of its own.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from services.scoring.domain.history import RETURNED, Return, StoredInteraction, moments_of
from services.scoring.domain.model import Reason, ScoringModel
from services.scoring.domain.reasons import top_reasons
from services.scoring.domain.results import Evaluation, NamedScoreResult, StageReached
from services.scoring.domain.tally import Tally

Moment = tuple[float, int, Return]
# A state saved in another format is not read: the lead's history is replayed instead.
# 2: the named scores' totals are kept too.
STATE_FORMAT = 2


class Replay:
    """The state of one lead at a point of its timeline (its `clock`)."""

    def __init__(self, model: ScoringModel, explain: bool) -> None:
        self.model = model
        self.explain = explain
        self.last_time: float | None = None
        self.latest: tuple[float, str] | None = None
        self.profile: dict[str, Any] = {}
        self.main = Tally(model.main, self.profile)
        self.named = {key: Tally(rules, self.profile) for key, rules in model.named.items()}
        self._tallies = (self.main, *self.named.values())
        self.campaigns: set[str] = set()
        self.source_channel: str | None = None
        self.stage = -1
        self.cycle = 0
        self.returned_to: str | None = None
        self.blocked_until = -math.inf
        self.reached: list[StageReached] = []
        # Returns and cool-off ends not yet on the timeline, in timeline order.
        self.pending: list[Moment] = []

    # --- moving along the timeline ------------------------------------------------------

    def schedule(self, returns: Iterable[Return]) -> None:
        self.pending = sorted([*self.pending, *moments_of(returns)], key=_moment_order)

    def follows(self, interaction: StoredInteraction) -> bool:
        """Whether the interaction comes after everything replayed so far, so that feeding
        it gives what a replay of the whole history would."""
        return (self.last_time is None or interaction.time >= self.last_time) and (
            self.latest is None or interaction.order > self.latest
        )

    def feed(self, interaction: StoredInteraction) -> None:
        # A return or cool-off end of the same moment sorts before the interaction.
        self.settle(interaction.time)
        self._decay_to(interaction.time)
        self._climb(interaction.time, self._interact(interaction), interaction.event_id)
        self.latest = interaction.order

    def settle(self, until: float) -> None:
        """Put the returns and cool-off ends up to `until` on the timeline."""
        pending = self.pending
        while pending and pending[0][0] <= until:
            time, kind, sent_back = pending.pop(0)
            self._decay_to(time)
            if kind == RETURNED:
                self._send_back(sent_back)
            else:
                self._climb(time, -1, None)

    def _decay_to(self, now: float) -> None:
        if self.last_time is not None:
            elapsed = now - self.last_time
            for tally in self._tallies:
                tally.decay(elapsed)
        self.last_time = now

    def _stage_key(self) -> str | None:
        return self.model.stage_keys[self.stage] if self.stage >= 0 else self.returned_to

    def _interact(self, interaction: StoredInteraction) -> int:
        """Add the interaction's points; answer the stage it enters directly (-1: none)."""
        if self.source_channel is None:
            self.source_channel = interaction.channel
        if interaction.campaign:
            self.campaigns.add(interaction.campaign)
        if interaction.profile:
            self.profile.update(
                {k: v for k, v in interaction.profile.items() if v not in (None, "")}
            )
            for tally in self._tallies:
                tally.refit(self.profile)
        for tally in self.named.values():
            tally.add(interaction, self.explain)
        return self.main.add(interaction, self.explain)

    def _levels(self) -> dict[str, float] | None:
        """Every score stage criteria may name, as it stands now (None: no stage names any)."""
        if not self.model.combines_scores:
            return None
        main = self.main
        return {
            "score": main.engagement + main.fit,
            "engagement": main.engagement,
            "fit": main.fit,
            **self._named_scores(),
        }

    def _named_scores(self) -> dict[str, float]:
        return {key: tally.engagement + tally.fit for key, tally in self.named.items()}

    def _climb(self, now: float, entry_stage: int, event_id: str | None) -> None:
        """Move to the furthest stage the lead now qualifies for, if it is further."""
        model = self.model
        highest = model.hand_off if now >= self.blocked_until else model.hand_off - 1
        entry_stage = min(entry_stage, highest)
        fit = self.main.fit
        score = self.main.engagement + fit
        above = max(self.stage, entry_stage)
        qualifying = (
            model.qualifying_stage(score, fit, self.profile, above, highest, self._levels())
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

    def _send_back(self, sent_back: Return) -> None:
        self._reach(sent_back.stage, sent_back.time, sent_back.event_id, "returned")
        self.stage, self.returned_to = -1, sent_back.stage
        self.cycle += 1
        eligible = sent_back.eligible_again
        self.blocked_until = eligible if eligible is not None else math.inf
        if sent_back.resets_score:
            for tally in self._tallies:
                tally.reset()

    def _reach(self, stage: str, now: float, event_id: str | None, reason: str) -> None:
        fit = self.main.fit
        score = self.main.engagement + fit
        hand_off = reason != "returned" and self.model.stage_index.get(stage) == self.model.hand_off
        self.reached.append(
            StageReached(
                stage,
                self._stage_key(),
                now,
                event_id,
                score,
                self.model.grade(score, fit),
                reason,
                self.cycle,
                dict(self.profile),
                tuple(sorted(self.campaigns)),
                self.source_channel,
                self.reasons(now) if hand_off and self.explain else (),
                self._named_scores(),
            )
        )

    # --- what the state means -----------------------------------------------------------

    def decayed_by_rule(self, as_of: float) -> dict[str, float]:
        return self.main.decayed_by_rule(as_of)

    def reasons(self, as_of: float) -> tuple[Reason, ...]:
        """Why the lead stands where it does at `as_of`: the rules that gave it most."""
        return top_reasons(self.model, self.decayed_by_rule(as_of), self.main.fit_by_rule)

    def result(self, as_of: float) -> Evaluation:
        """The lead as of `as_of` (no earlier than the clock), with the stages reached since
        this replay started."""
        model = self.model
        main = self.main
        engagement = main.engagement_at(as_of, self.last_time)
        score = engagement + main.fit
        explain = self.explain
        return Evaluation(
            score=score,
            engagement=engagement,
            fit=main.fit,
            grade=model.grade(score, main.fit),
            stage=self._stage_key(),
            stages_reached=tuple(self.reached),
            thresholds_met=frozenset(t for t in model.thresholds if score >= t),
            last_event_time=self.last_time,
            profile=self.profile,
            points_by_rule=main.points_by_rule(),
            decayed_by_rule=main.decayed_by_rule(as_of) if explain else {},
            fit_by_rule=main.fit_by_rule if explain else {},
            hand_off_blocked_until=(
                self.blocked_until if math.isfinite(self.blocked_until) else None
            ),
            cycle=self.cycle,
            campaigns=tuple(sorted(self.campaigns)),
            source_channel=self.source_channel,
            named_scores=tuple(
                self._named_result(key, tally, as_of) for key, tally in self.named.items()
            ),
        )

    def _named_result(self, key: str, tally: Tally, as_of: float) -> NamedScoreResult:
        engagement = tally.engagement_at(as_of, self.last_time)
        score = engagement + tally.fit
        return NamedScoreResult(
            key=key,
            name=self.model.score_names[key],
            score=score,
            engagement=engagement,
            fit=tally.fit,
            thresholds_met=frozenset(t for t in self.model.named_thresholds[key] if score >= t),
            points_by_rule=tally.points_by_rule(),
            decayed_by_rule=tally.decayed_by_rule(as_of) if self.explain else {},
            fit_by_rule=tally.fit_by_rule if self.explain else {},
        )

    # --- kept between batches -----------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The state as JSON-ready values; floats kept exactly (JSON numbers round-trip)."""
        blocked = self.blocked_until
        never = blocked == math.inf
        return {
            "format": STATE_FORMAT,
            "clock": self.last_time,
            "latest": list(self.latest) if self.latest else None,
            **self.main.snapshot(),
            "named": {key: tally.snapshot() for key, tally in self.named.items()},
            "profile": self.profile,
            "campaigns": sorted(self.campaigns),
            "source_channel": self.source_channel,
            "stage": self.stage,
            "cycle": self.cycle,
            "returned_to": self.returned_to,
            "blocked_until": "never" if never else blocked if math.isfinite(blocked) else None,
            "pending": [
                [time, kind, r.event_id, r.time, r.stage, r.resets_score, r.eligible_again]
                for time, kind, r in self.pending
            ],
        }

    @classmethod
    def restore(cls, model: ScoringModel, saved: Mapping[str, Any]) -> Replay:
        """A replay that goes on from a `snapshot` taken under the same definitions."""
        replay = cls(model, explain=True)
        replay.last_time = saved["clock"]
        latest = saved["latest"]
        replay.latest = (latest[0], latest[1]) if latest else None
        replay.profile = dict(saved["profile"])
        replay.main.restore(saved, replay.profile)
        for key, tally in replay.named.items():
            tally.restore(saved["named"][key], replay.profile)
        replay.campaigns = set(saved["campaigns"])
        replay.source_channel = saved["source_channel"]
        replay.stage = saved["stage"]
        replay.cycle = saved["cycle"]
        replay.returned_to = saved["returned_to"]
        blocked = saved["blocked_until"]
        replay.blocked_until = (
            -math.inf if blocked is None else math.inf if blocked == "never" else blocked
        )
        replay.pending = [
            (time, kind, Return(event_id, returned, stage, resets, eligible))
            for time, kind, event_id, returned, stage, resets, eligible in saved["pending"]
        ]
        return replay


def _moment_order(moment: Moment) -> tuple[float, int, str]:
    return (moment[0], moment[1], moment[2].event_id)
