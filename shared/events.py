"""The event envelope (CloudEvents 1.0) and the interaction payloads every service agrees on.

Models are frozen values. An interaction's `id` is the idempotency key end to end.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar, get_args

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

CLOUDEVENTS_VERSION: Literal["1.0"] = "1.0"
INTERACTION_TYPE_PREFIX = "leadflow.interaction"

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s.]{2,}$")

# PostgreSQL cannot store NUL in text or jsonb: a string with one is invalid input.
NO_NUL = r"^[^\x00]*$"
Text = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200, pattern=NO_NUL)]
# An address a person reads mail at: what a rep or a manager is notified on.
EmailAddress = Annotated[
    str, StringConstraints(max_length=254, pattern=r"^[^@\s\x00<>]+@[^@\s\x00<>]+\.[^@\s\x00<>]+$")
]
EventId = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[!-~]+$")]
CampaignKey = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.\-]*$")
]
Url = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2048, pattern=NO_NUL)]


class FrozenModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def normalise_email(email: str) -> str:
    """Emails identify people regardless of case or surrounding spaces."""
    return email.strip().lower()


class Contact(FrozenModel):
    """What a source knows about the person behind an interaction."""

    email: Annotated[str, StringConstraints(max_length=254, pattern=NO_NUL)] | None = None
    anonymous_id: EventId | None = None
    first_name: Text | None = None
    last_name: Text | None = None
    company: Text | None = None
    job_title: Text | None = None
    industry: Text | None = None
    company_size: Annotated[int, Field(ge=1, le=10_000_000)] | None = None
    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")] | None = Field(
        default=None, description="ISO 3166-1 alpha-2 code"
    )
    phone: (
        Annotated[str, StringConstraints(strip_whitespace=True, max_length=50, pattern=NO_NUL)]
        | None
    ) = None

    @field_validator("email", mode="before")
    @classmethod
    def _normalise_email(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = normalise_email(value)
            if not value:
                return None
            if not _EMAIL.match(value):
                raise ValueError("is not an email address")
        return value

    @field_validator("country", mode="before")
    @classmethod
    def _upper_country(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _identifiable(self) -> Contact:
        if self.email is None and self.anonymous_id is None:
            raise ValueError("either email or anonymous_id is required")
        return self

    @property
    def identity_key(self) -> str:
        """The lead identity: the normalised email, else the anonymous id."""
        return self.email or self.anonymous_id or ""


class Properties(BaseModel):
    """Free-form details of an interaction; the named ones are the ones scoring matches on."""

    model_config = ConfigDict(frozen=True, extra="allow")


class WebProperties(Properties):
    url: Url | None = None
    asset: Text | None = None
    referrer: Url | None = None
    form: Text | None = None


class EmailProperties(Properties):
    message_id: Text | None = None
    url: Url | None = None
    subject: Text | None = None
    delta: int | float | None = Field(
        default=None, description="points_changed: how much the sender's own score changed"
    )


class TradeshowProperties(Properties):
    show: Text | None = None
    booth: Text | None = None
    notes: Annotated[str, StringConstraints(max_length=2000, pattern=NO_NUL)] | None = None


class SocialProperties(Properties):
    network: Literal["linkedin", "x", "facebook", "instagram", "youtube", "tiktok", "xing", "other"]
    url: Url | None = None
    form: Text | None = None


class InteractionFields(FrozenModel):
    id: EventId | None = Field(
        default=None, description="The source's own unique id; ingest assigns a UUID if absent"
    )
    time: AwareDatetime | None = Field(
        default=None, description="When it happened; defaults to receipt time"
    )
    campaign: CampaignKey | None = None
    contact: Contact

    @property
    def channel_type(self) -> tuple[str, str]:
        channel: str = getattr(self, "channel")  # noqa: B009 - declared by every subclass
        kind: str = getattr(self, "type")  # noqa: B009
        return channel, kind

    @property
    def cloudevent_type(self) -> str:
        channel, kind = self.channel_type
        return f"{INTERACTION_TYPE_PREFIX}.{channel}.{kind}"


class WebInteraction(InteractionFields):
    channel: Literal["web"]
    type: Literal["page_view", "form_submit", "content_download", "demo_request"]
    properties: WebProperties = Field(default=WebProperties(), validate_default=True)

    @field_validator("properties")
    @classmethod
    def _what_was_seen(cls, properties: WebProperties, info: ValidationInfo) -> WebProperties:
        kind = info.data.get("type")
        if kind == "page_view" and not properties.url:
            raise ValueError("url is required for a page_view")
        if kind == "content_download" and not (properties.asset or properties.url):
            raise ValueError("asset or url is required for a content_download")
        return properties


class EmailInteraction(InteractionFields):
    """Email and marketing automation: what a contact did with an email, and what the
    automation tool learnt about them (`profile_update` carries contact fields and scores
    nothing unless a rule says so; `points_changed` carries the tool's own score change)."""

    channel: Literal["email"]
    type: Literal[
        "open", "click", "reply", "unsubscribe", "bounce", "profile_update", "points_changed"
    ]
    properties: EmailProperties = Field(default=EmailProperties(), validate_default=True)

    @field_validator("properties")
    @classmethod
    def _clicked_link(cls, properties: EmailProperties, info: ValidationInfo) -> EmailProperties:
        if info.data.get("type") == "click" and not properties.url:
            raise ValueError("url is required for a click")
        if info.data.get("type") == "points_changed" and properties.delta is None:
            raise ValueError("delta is required for points_changed")
        return properties


class TradeshowInteraction(InteractionFields):
    channel: Literal["tradeshow"]
    type: Literal["badge_scan", "booth_visit", "demo", "meeting"]
    properties: TradeshowProperties = TradeshowProperties()


class SocialInteraction(InteractionFields):
    channel: Literal["social"]
    type: Literal["follow", "share", "mention", "comment", "message", "form_submit"]
    properties: SocialProperties


Interaction = Annotated[
    WebInteraction | EmailInteraction | TradeshowInteraction | SocialInteraction,
    Field(discriminator="channel"),
]

CHANNEL_TYPES: dict[str, tuple[str, ...]] = {
    get_args(model.model_fields["channel"].annotation)[0]: get_args(
        model.model_fields["type"].annotation
    )
    for model in get_args(get_args(Interaction)[0])
}

DataT = TypeVar("DataT")


class CloudEvent(FrozenModel, Generic[DataT]):
    """CloudEvents 1.0 in JSON, plus the lead-definitions version where scoring/router emit."""

    specversion: Literal["1.0"] = CLOUDEVENTS_VERSION
    id: EventId
    source: str
    type: str
    time: datetime
    subject: str
    datacontenttype: Literal["application/json"] = "application/json"
    definitions_version: str | None = None
    data: DataT


class InteractionRecorded(CloudEvent[Interaction]):
    """An interaction ingest accepted and appended to `lead.interactions`."""


LOG_STARTED_TYPE = "leadflow.log.started"
DEAD_LETTER_TYPE = "leadflow.dead_letter"


class LogStarted(FrozenModel):
    """The first record of a partition: its id marks this incarnation of the log."""

    topic: str
    partition: int


class DeadLetter(FrozenModel):
    """A record a consumer could not handle, kept whole with the reason."""

    error: str
    source_topic: str
    partition: int
    offset: int
    original_key: str | None
    original_value_base64: str


class DeadLetterRecorded(CloudEvent[DeadLetter]):
    """A record a consumer could not handle, on the dead-letter topic."""


class LeadProfile(FrozenModel):
    """What is known of the person behind a lead, as the router needs it for assignment."""

    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    job_title: str | None = None
    industry: str | None = None
    company_size: int | None = None
    country: str | None = None
    campaigns: tuple[str, ...] = ()
    source_channel: str | None = Field(
        default=None, description="the channel of the lead's first interaction"
    )


class ScoreReason(FrozenModel):
    """A scoring rule (behaviour or fit) and the points it gave a lead at a moment."""

    rule: str = Field(description="the rule's key in the lead definitions")
    label: str = Field(description="the rule's description, else its key")
    points: float = Field(description="behaviour points as decayed at that moment")


class LeadStageChanged(FrozenModel):
    """A lead moved from one funnel stage to another."""

    kind: Literal["stage_changed"] = "stage_changed"
    lead_id: str
    from_stage: str | None
    to_stage: str
    is_hand_off: bool
    reason: str
    score: float
    grade: str
    occurred_at: datetime
    caused_by: str | None = Field(description="the interaction (event id) that caused it")
    profile: LeadProfile
    top_reasons: tuple[ScoreReason, ...] = Field(
        default=(),
        description="on a hand-off: the three rules that gave the most points, largest first",
    )
    scores: dict[str, float] = Field(
        default={},
        description="every named score of the definitions then (score key -> value); "
        "empty when they declare none",
    )


class ScoreThresholdCrossed(FrozenModel):
    """A lead's score (the main one, or a named one) rose to a threshold or decayed below it."""

    kind: Literal["threshold_crossed"] = "threshold_crossed"
    lead_id: str
    threshold: float
    direction: Literal["up", "down"]
    score: float = Field(description="the value of the score that crossed")
    grade: str
    occurred_at: datetime
    score_key: str = Field(
        default="score", description="which score crossed: `score` (the main one) or a named key"
    )
    scores: dict[str, float] = Field(
        default={}, description="every named score then (score key -> value)"
    )


LifecycleChange = Annotated[LeadStageChanged | ScoreThresholdCrossed, Field(discriminator="kind")]


class LifecycleRecorded(CloudEvent[LifecycleChange]):
    """A change of a lead's funnel position, on `lead.lifecycle`."""


def lifecycle_type(change: LeadStageChanged | ScoreThresholdCrossed) -> str:
    return f"leadflow.lead.{change.kind}"


class LeadRouted(FrozenModel):
    """What happened to a sales-ready lead on its way to a rep (on `lead.handoffs`)."""

    kind: Literal["assigned", "reassigned", "accepted", "escalated", "queued"]
    lead_id: str
    rep_id: str | None
    previous_rep_id: str | None = None
    team: str | None
    grade: str | None
    reason: str
    sla_deadline: datetime | None = None
    escalated_to: str | None = None
    occurred_at: datetime


class LeadReturnedToNurture(FrozenModel):
    """Sales sent a lead back to marketing (on `lead.nurture`)."""

    lead_id: str
    reason: str
    reason_label: str
    action: Literal["nurture", "disqualify", "reset_score"]
    stage: str
    rep_id: str
    track: str | None
    returned_at: datetime
    eligible_again_at: datetime | None


class SalesActionTaken(FrozenModel):
    """A rep's action on a lead, as a fact (on `sales.actions`)."""

    action: Literal["accept", "reject", "qualify", "convert", "won", "lost"]
    lead_id: str
    rep_id: str
    from_stage: str | None
    to_stage: str | None
    details: dict[str, Any] = {}
    occurred_at: datetime


class HandoffRecorded(CloudEvent[LeadRouted]):
    """An envelope on `lead.handoffs`."""


class NurtureRecorded(CloudEvent[LeadReturnedToNurture]):
    """An envelope on `lead.nurture`."""


class SalesActionRecorded(CloudEvent[SalesActionTaken]):
    """An envelope on `sales.actions`."""
