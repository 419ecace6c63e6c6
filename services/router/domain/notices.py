"""What a person is told about a lead: the words of an email and of a chat message."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from shared.definitions.model import Sla, Team

# Slack refuses a section block with more text than this.
SECTION_CHARACTERS = 3000
Purpose = Literal["assigned", "reassigned", "reminder", "escalated"]
Channel = Literal["email", "chat"]


@dataclass(frozen=True)
class NoticeRequest:
    """Someone is to be told of `purpose` about a lead, at `due_at`: the rep `rep_id` at
    their own address for the channel, as the roster has it, or else `address` (a manager's
    email, a team's channel)."""

    event_id: str
    lead_id: str
    purpose: Purpose
    channel: Channel
    due_at: datetime
    rep_id: str | None = None
    address: str | None = None

    @property
    def dedupe_key(self) -> str:
        return f"{self.event_id}/{self.purpose}/{self.channel}/{self.address or self.rep_id}"


@dataclass(frozen=True)
class Audience:
    """Who hears of hand-offs besides the rep's own chat: email only when a mail server is
    configured, and the teams' chat channels that have a webhook."""

    email: bool = False
    team_chat: Mapping[str, str] = field(default_factory=dict)


def notices_for(
    kind: str,
    *,
    event_id: str,
    lead_id: str,
    rep_id: str | None,
    team: Team | None,
    sla: Sla | None,
    at: datetime,
    deadline: datetime | None,
    audience: Audience,
) -> list[NoticeRequest]:
    """The notices a routing event causes: the rep on assignment (and a reminder before
    the deadline), the manager on escalation, and the team's channel on both."""
    own: tuple[Channel, ...] = ("email", "chat") if audience.email else ("chat",)
    team_chat = audience.team_chat.get(team.key) if team else None
    notices: list[NoticeRequest] = []
    if kind in ("assigned", "reassigned") and rep_id:
        purpose: Purpose = "assigned" if kind == "assigned" else "reassigned"
        notices += [
            NoticeRequest(event_id, lead_id, purpose, channel, at, rep_id=rep_id) for channel in own
        ]
        remind_at = reminder_due(at, deadline, sla.remind_at_percent) if sla and deadline else None
        if remind_at is not None:
            notices += [
                NoticeRequest(event_id, lead_id, "reminder", channel, remind_at, rep_id=rep_id)
                for channel in own
            ]
    elif kind == "escalated" and team:
        purpose = "escalated"
        if audience.email and team.manager_email:
            notices.append(
                NoticeRequest(event_id, lead_id, purpose, "email", at, address=team.manager_email)
            )
    else:
        return []
    if team_chat:
        notices.append(NoticeRequest(event_id, lead_id, purpose, "chat", at, address=team_chat))
    return notices


@dataclass(frozen=True)
class Reason:
    label: str
    points: float


@dataclass(frozen=True)
class LeadSummary:
    lead_id: str
    name: str | None
    company: str | None
    job_title: str | None
    grade: str | None
    score: float | None
    reasons: tuple[Reason, ...]
    sla_deadline: datetime | None


@dataclass(frozen=True)
class Links:
    lead: str
    accept: str | None = None
    reject: str | None = None


@dataclass(frozen=True)
class Notice:
    subject: str
    text: str
    # Slack Block Kit; Mattermost and Rocket.Chat read the same `text` and ignore what they lack.
    blocks: tuple[dict[str, Any], ...]

    def chat_message(self) -> dict[str, Any]:
        return {"text": self.text, "blocks": list(self.blocks)}


_HEADLINES: dict[Purpose, str] = {
    "assigned": "New lead for you",
    "reassigned": "A lead was reassigned to you",
    "reminder": "Reminder: follow up before the deadline",
    "escalated": "Escalation: a lead missed its follow-up time",
}


def who(lead: LeadSummary) -> str:
    person = lead.name or "Someone"
    at = ", ".join(part for part in (lead.job_title, lead.company) if part)
    return f"{person} ({at})" if at else person


def local_time(moment: datetime, zone: str) -> str:
    """`Tue 1 Dec 2026, 14:30 CET`: what a person reads in their own time zone."""
    local = moment.astimezone(ZoneInfo(zone))
    return f"{local:%a} {local.day} {local:%b %Y, %H:%M} {local.tzname()}"


def compose(
    purpose: Purpose,
    lead: LeadSummary,
    *,
    recipient_zone: str,
    links: Links,
    assignee: str | None = None,
) -> Notice:
    """The notice of `purpose` about `lead` for someone living in `recipient_zone`;
    `assignee` names the rep when the notice goes to someone else (manager, team)."""
    headline = _HEADLINES[purpose]
    facts = [f"Lead: {who(lead)}"]
    if lead.grade or lead.score is not None:
        score = f"{lead.score:.0f}" if lead.score is not None else "?"
        facts.append(f"Grade {lead.grade or '?'}, score {score}")
    if lead.reasons:
        facts.append("Why: " + "; ".join(f"{r.label} (+{r.points:.0f})" for r in lead.reasons[:3]))
    if assignee:
        late = ", who has not accepted it in time" if purpose == "escalated" else ""
        facts.append(f"Assigned to {assignee}{late}.")
    if lead.sla_deadline is not None:
        facts.append(f"Follow up by: {local_time(lead.sla_deadline, recipient_zone)}")
    actions = [("Open the lead", links.lead)]
    if links.accept:
        actions.append(("Accept", links.accept))
    if links.reject:
        actions.append(("Send back to marketing", links.reject))
    text = "\n".join(
        [f"{headline}: {who(lead)}", "", *facts, "", *(f"{label}: {url}" for label, url in actions)]
    )
    blocks: tuple[dict[str, Any], ...] = (
        {"type": "header", "text": {"type": "plain_text", "text": headline}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _clip("\n".join(facts))}},
        {
            "type": "actions",
            "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": label}, "url": url}
                for label, url in actions
            ],
        },
    )
    return Notice(subject=f"{headline}: {who(lead)}", text=text, blocks=blocks)


def _clip(text: str, most: int = SECTION_CHARACTERS) -> str:
    return text if len(text) <= most else text[: most - 1] + "…"


def reminder_due(
    assigned_at: datetime, deadline: datetime, percent: float | None
) -> datetime | None:
    """When `percent` of the time to follow up has gone (None: no reminder)."""
    if percent is None:
        return None
    return assigned_at + (deadline - assigned_at) * (percent / 100)
