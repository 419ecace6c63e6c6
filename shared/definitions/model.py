"""The shape of `lead-definitions.yaml` (DESIGN.md section 2), as frozen pydantic models.

Shape only: references between sections (a stage named by a campaign, a grade named by
a stage) are checked in `checks.py`, so each problem can be reported with its path.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StringConstraints,
    model_serializer,
    model_validator,
)

from shared.events import CHANNEL_TYPES, EmailAddress

Key = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_\-.]*$", max_length=64)]
GradeKey = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9+\-]?$")]
Glob = Annotated[str, StringConstraints(min_length=1, max_length=500)]
SalesAction = Literal["accept", "reject", "qualify", "convert", "won", "lost", "disqualify"]
ContactField = Literal[
    "email",
    "first_name",
    "last_name",
    "company",
    "job_title",
    "industry",
    "company_size",
    "country",
    "phone",
]
QualificationField = Literal["budget", "timeframe", "requirements", "authority"]


class Definition(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _OmittedWhenEmpty(Definition):
    """Definitions whose newer optional fields are left out of a dump while empty, so that a
    file that does not use them keeps its version (the hash of the dump)."""

    _omitted_when_empty: ClassVar[tuple[str, ...]] = ()

    @model_serializer(mode="wrap")
    def _without_empty(self, serialize: SerializerFunctionWrapHandler) -> dict[str, Any]:
        dumped: dict[str, Any] = serialize(self)
        for name in self._omitted_when_empty:
            if name in dumped and not dumped[name]:
                del dumped[name]
        return dumped


ScoreMinimums = dict[Key, float]


class StageEntry(_OmittedWhenEmpty):
    """How a lead enters a stage: automatically by criteria, or by a sales action."""

    _omitted_when_empty: ClassVar[tuple[str, ...]] = ("all_of", "any_of")

    score: float | None = Field(default=None, description="the lowest score that qualifies")
    grade: GradeKey | None = Field(default=None, description="this grade or a hotter one")
    required_fields: tuple[ContactField, ...] = ()
    all_of: ScoreMinimums = Field(
        default={},
        description="every one of these scores (named scores, or score, engagement, fit) "
        "at its minimum or above",
    )
    any_of: ScoreMinimums = Field(
        default={}, description="at least one of these scores at its minimum or above"
    )
    action: SalesAction | None = None
    requires: tuple[QualificationField, ...] = Field(
        default=(), description="what a rep must record with the action (e.g. budget)"
    )

    @model_validator(mode="after")
    def _one_way_in(self) -> StageEntry:
        automatic = (
            self.score is not None
            or self.grade is not None
            or self.required_fields
            or self.all_of
            or self.any_of
        )
        if self.action is not None and automatic:
            raise ValueError("a stage is entered by criteria or by a sales action, not both")
        if self.action is None and not automatic:
            raise ValueError(
                "give criteria (score, grade, required_fields, all_of, any_of) or an action"
            )
        if self.requires and self.action is None:
            raise ValueError("requires goes with a sales action")
        return self

    @property
    def automatic(self) -> bool:
        return self.action is None


class Stage(Definition):
    key: Key
    name: str
    owner: Literal["marketing", "sales"]
    description: str = ""
    entry: StageEntry


class RuleMatch(Definition):
    """Which interactions a rule scores; patterns are case-insensitive globs (`*pricing*`)."""

    channel: Literal["web", "email", "tradeshow", "social"] | None = None
    type: str | None = None
    campaign: Glob | None = None
    url: Glob | None = None
    asset: Glob | None = None
    network: Glob | None = None

    @model_validator(mode="after")
    def _known_type(self) -> RuleMatch:
        if self.type is None:
            return self
        channels = [self.channel] if self.channel else list(CHANNEL_TYPES)
        if not any(self.type in CHANNEL_TYPES[channel] for channel in channels):
            where = f"the {self.channel} channel" if self.channel else "any channel"
            raise ValueError(f"{self.type!r} is not an interaction type of {where}")
        return self


class Cap(Definition):
    points: Annotated[float, Field(gt=0)]
    window_days: Annotated[float, Field(gt=0)]


class PointsRule(Definition):
    """Behaviour points: an interaction matching `match` gives `points`."""

    key: Key
    description: str = ""
    match: RuleMatch
    points: float = Field(description="may be negative (an unsubscribe, a bounce)")
    cap: Cap | None = Field(default=None, description="at most this many points per window")

    @model_validator(mode="after")
    def _nonzero(self) -> PointsRule:
        if self.points == 0:
            raise ValueError("points must not be 0")
        return self


class ScoringRule(PointsRule):
    entry_stage: Key | None = Field(default=None, description="a match enters this stage")


class FitRule(Definition):
    """Profile points: a contact field matching any pattern, or a company size in a range."""

    key: Key
    field: Literal["job_title", "industry", "company_size", "country", "company"]
    any_of: tuple[Glob, ...] = ()
    min: float | None = None
    max: float | None = None
    points: float

    @model_validator(mode="after")
    def _one_test(self) -> FitRule:
        numeric = self.field == "company_size"
        if numeric and (self.any_of or (self.min is None and self.max is None)):
            raise ValueError("company_size is matched with min and/or max")
        if not numeric and (not self.any_of or self.min is not None or self.max is not None):
            raise ValueError(f"{self.field} is matched with any_of: a list of patterns")
        return self


class Decay(Definition):
    half_life_days: Annotated[float, Field(gt=0)] | None = Field(
        default=None, description="behaviour points halve every this many days; none = no decay"
    )


class Scoring(Definition):
    decay: Decay = Decay()
    rules: tuple[ScoringRule, ...]
    fit: tuple[FitRule, ...] = ()


# What stage criteria call the main score's parts: its total, behaviour and profile points.
MAIN_SCORE_PARTS = ("score", "engagement", "fit")


class NamedScore(Definition):
    """A score kept beside the main one (per product line, or fit apart from engagement),
    computed the same way from its own rules, caps, decay and fit."""

    key: Key
    name: str
    description: str = ""
    decay: Decay = Decay()
    rules: tuple[PointsRule, ...] = ()
    fit: tuple[FitRule, ...] = ()
    thresholds: tuple[float, ...] = Field(
        default=(), description="crossing one, up or down, is reported like a stage threshold"
    )


class Bounds(Definition):
    """A half-open range: min <= value < max; a missing end is unbounded."""

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Bounds:
        if self.min is not None and self.max is not None and self.min >= self.max:
            raise ValueError("min must be below max")
        return self

    def contains(self, value: float) -> bool:
        return (self.min is None or value >= self.min) and (self.max is None or value < self.max)


class GradeLevel(Definition):
    grade: GradeKey
    label: str


class GradeBand(Definition):
    grade: GradeKey
    score: Bounds = Bounds()
    fit: Bounds = Bounds()


class Grades(Definition):
    levels: tuple[GradeLevel, ...] = Field(description="hottest first")
    default: GradeKey = Field(description="the grade of a lead no band places")
    bands: tuple[GradeBand, ...]


class Campaign(Definition):
    name: str
    funnel: Literal["top", "middle", "bottom"]
    multiplier: Annotated[float, Field(gt=0)] = 1.0
    entry_stage: Key | None = None
    cost: Annotated[float, Field(ge=0)] | None = None


class Territory(Definition):
    countries: tuple[Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")], ...] = ()
    regions: tuple[str, ...] = ()
    industries: tuple[str, ...] = ()
    company_size: Bounds = Bounds()
    products: tuple[str, ...] = ()


class Team(Definition):
    key: Key
    name: str
    manager: str = Field(description="who escalations go to")
    manager_email: EmailAddress | None = Field(
        default=None, description="where the manager is told of an escalation"
    )
    strategy: Literal["round_robin", "weighted", "least_loaded"] = "round_robin"
    territory: Territory = Territory()


class Sla(Definition):
    accept_within_minutes: Annotated[float, Field(gt=0)]
    remind_at_percent: Annotated[float, Field(gt=0, lt=100)] | None = Field(
        default=80, description="remind the rep when this share of the time has gone (null: never)"
    )


class Routing(Definition):
    teams: tuple[Team, ...]
    default_capacity: Annotated[int, Field(ge=1)] = 25
    account_ownership: bool = True
    sla: dict[GradeKey, Sla]
    escalate_after_breaches: Annotated[int, Field(ge=1)] = 2


class NurtureReason(Definition):
    label: str
    action: Literal["nurture", "disqualify", "reset_score"]
    stage: Key = Field(description="the stage the lead returns to")
    track: str | None = Field(default=None, description="the marketing nurture track")
    cool_off_days: Annotated[float, Field(ge=0)] = 0


class Nurture(Definition):
    reasons: dict[Key, NurtureReason]


class LeadDefinitions(_OmittedWhenEmpty):
    """The whole agreement: stages, scoring, grades, campaigns, routing and nurture."""

    _omitted_when_empty: ClassVar[tuple[str, ...]] = ("scores",)

    name: str = "Lead definitions"
    stages: tuple[Stage, ...] = Field(min_length=1)
    scoring: Scoring
    scores: tuple[NamedScore, ...] = Field(
        default=(), description="scores kept beside the main one, each with its own rules"
    )
    grades: Grades
    campaigns: dict[Key, Campaign] = {}
    routing: Routing | None = None
    nurture: Nurture | None = None


def hand_off_stage(definitions: LeadDefinitions) -> Stage:
    """The first sales-owned stage entered automatically: where marketing hands a lead over."""
    return next(
        stage for stage in definitions.stages if stage.owner == "sales" and stage.entry.automatic
    )


def grade_ranks(definitions: LeadDefinitions) -> dict[str, int]:
    """Grade -> rank, 0 being the hottest."""
    return {level.grade: rank for rank, level in enumerate(definitions.grades.levels)}
