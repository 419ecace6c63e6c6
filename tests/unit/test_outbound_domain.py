"""The pure rules of outbound messages: retries, one-click links, who is told what."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from slack_sdk.models.blocks import Block

from services.router.domain.delivery import (
    LONGEST_PAUSE,
    Attempt,
    RetryPolicy,
    judge,
    retry_after,
    should_pause,
)
from services.router.domain.links import LinkRejected, OneClick, link_secret, sign, verify
from services.router.domain.notices import (
    Audience,
    LeadSummary,
    Links,
    Purpose,
    Reason,
    compose,
    notices_for,
    reminder_due,
)
from shared.definitions.model import Sla, Team

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
POLICY = RetryPolicy(first_retry=timedelta(seconds=10), give_up_after=timedelta(hours=24))


def verdict_of(attempt: Attempt, number: int = 1, first_tried: datetime = NOW) -> str:
    rng = random.Random(7)
    return judge(
        attempt, number=number, first_tried=first_tried, now=NOW, policy=POLICY, rng=rng
    ).outcome


@pytest.mark.parametrize(
    ("attempt", "outcome"),
    [
        (Attempt(status=200), "delivered"),
        (Attempt(status=204), "delivered"),
        (Attempt(status=500), "retry"),
        (Attempt(status=503), "retry"),
        (Attempt(status=None, error="no answer in time"), "retry"),
        (Attempt(status=429), "retry"),
        (Attempt(status=400), "failed"),
        (Attempt(status=410), "failed"),
        (Attempt(status=None, error="550 no such user", permanent=True), "failed"),
    ],
)
def test_what_an_answer_means(attempt: Attempt, outcome: str) -> None:
    assert verdict_of(attempt) == outcome


def test_retries_stop_after_the_horizon() -> None:
    assert verdict_of(Attempt(status=500), number=5, first_tried=NOW - timedelta(hours=23)) == (
        "retry"
    )
    late = verdict_of(Attempt(status=500), number=40, first_tried=NOW - timedelta(hours=24))
    assert late == "failed"


def test_backoff_doubles_with_jitter_up_to_an_hour() -> None:
    rng = random.Random(1)
    pauses = [POLICY.pause_before(n, rng) for n in range(1, 20)]
    for n, pause in enumerate(pauses[:5], start=1):
        full = timedelta(seconds=10 * 2 ** (n - 1))
        assert full / 2 <= pause <= full
    assert all(pause <= LONGEST_PAUSE for pause in pauses)
    assert pauses[-1] >= LONGEST_PAUSE / 2


def test_429_waits_as_long_as_retry_after_says() -> None:
    verdict = judge(
        Attempt(status=429, retry_after="120"),
        number=1,
        first_tried=NOW,
        now=NOW,
        policy=POLICY,
        rng=random.Random(),
    )
    assert verdict.retry_at == NOW + timedelta(seconds=120)
    assert retry_after("Fri, 27 Nov 2026 12:05:00 GMT", NOW) == timedelta(minutes=5)
    assert retry_after("soon", NOW) is None
    assert retry_after(None, NOW) is None


def test_a_subscription_is_paused_after_failing_for_the_whole_period() -> None:
    day = timedelta(hours=24)
    assert not should_pause(None, NOW, day)
    assert not should_pause(NOW - timedelta(hours=23), NOW, day)
    assert should_pause(NOW - day, NOW, day)


def test_a_one_click_link_is_for_one_lead_rep_and_action_until_it_expires() -> None:
    secret = b"s3cret"
    click = OneClick("lead-1", "rep-1", "accept", NOW + timedelta(hours=1))
    token = sign(secret, click)
    assert verify(secret, token, NOW) == click
    with pytest.raises(LinkRejected, match="expired"):
        verify(secret, token, NOW + timedelta(hours=1))
    with pytest.raises(LinkRejected, match="not valid"):
        verify(b"other", token, NOW)
    signature = token.split(".")[1]
    forged = sign(b"other", OneClick("lead-1", "rep-1", "reject", click.expires))
    with pytest.raises(LinkRejected):
        verify(secret, f"{forged.split('.')[0]}.{signature}", NOW)


def test_the_link_secret_comes_from_the_admin_key_but_is_not_it() -> None:
    derived = link_secret(None, "admin-key")
    assert derived is not None
    assert b"admin-key" not in derived
    assert link_secret("configured", "admin-key") == b"configured"
    assert link_secret(None, None) is None


TEAM = Team(key="dach", name="DACH", manager="dach-lead", manager_email="boss@example.com")
SLA = Sla(accept_within_minutes=60)


def planned(
    kind: str,
    *,
    audience: Audience,
    rep_id: str = "r1",
    sla: Sla = SLA,
    deadline: datetime | None = NOW + timedelta(minutes=60),
) -> list[tuple[str, str, str | None]]:
    notices = notices_for(
        kind,
        event_id="e1",
        lead_id="l1",
        rep_id=rep_id,
        team=TEAM,
        sla=sla,
        at=NOW,
        deadline=deadline,
        audience=audience,
    )
    assert len({n.dedupe_key for n in notices}) == len(notices)
    return [(n.purpose, n.channel, n.address or n.rep_id) for n in notices]


def test_an_assignment_tells_the_rep_and_the_team_and_plans_a_reminder_at_80_percent() -> None:
    audience = Audience(email=True, team_chat={"dach": "https://chat.example.com/dach"})
    assert planned("assigned", audience=audience) == [
        ("assigned", "email", "r1"),
        ("assigned", "chat", "r1"),
        ("reminder", "email", "r1"),
        ("reminder", "chat", "r1"),
        ("assigned", "chat", "https://chat.example.com/dach"),
    ]
    assert reminder_due(NOW, NOW + timedelta(minutes=60), 80) == NOW + timedelta(minutes=48)


def test_an_escalation_tells_the_manager_and_nothing_else_tells_anyone() -> None:
    by_email = Audience(email=True)
    assert planned("escalated", audience=by_email) == [("escalated", "email", "boss@example.com")]
    assert planned("queued", audience=by_email) == []
    assert planned("accepted", audience=by_email) == []


def test_without_a_mail_server_only_chat_is_planned_and_a_reminder_can_be_turned_off() -> None:
    quiet = Sla(accept_within_minutes=60, remind_at_percent=None)
    assert planned("reassigned", audience=Audience(), rep_id="r2", sla=quiet) == [
        ("reassigned", "chat", "r2")
    ]
    assert reminder_due(NOW, NOW + timedelta(minutes=10), 50) == NOW + timedelta(minutes=5)


def test_a_notice_says_who_why_and_when_in_the_readers_zone() -> None:
    lead = LeadSummary(
        lead_id="l1",
        name="Ada Lovelace",
        company="Analytical Engines",
        job_title="CTO",
        grade="A",
        score=112.4,
        reasons=(Reason("Demo request", 40), Reason("Fit: CTO", 15), Reason("Pricing", 10)),
        sla_deadline=datetime(2026, 12, 1, 13, 30, tzinfo=UTC),
    )
    links = Links(lead="https://x/#lead-l1", accept="https://x/a", reject="https://x/r")
    notice = compose("assigned", lead, recipient_zone="Europe/Berlin", links=links)
    assert notice.subject == "New lead for you: Ada Lovelace (CTO, Analytical Engines)"
    assert "Follow up by: Tue 1 Dec 2026, 14:30 CET" in notice.text
    assert "Why: Demo request (+40); Fit: CTO (+15); Pricing (+10)" in notice.text
    assert "Accept: https://x/a" in notice.text
    message = notice.chat_message()
    assert message["text"] == notice.text
    assert [b["type"] for b in message["blocks"]] == ["header", "section", "actions"]

    to_manager = compose(
        "escalated", lead, recipient_zone="UTC", links=Links(lead="https://x"), assignee="Mia"
    )
    assert "Assigned to Mia, who has not accepted it in time." in to_manager.text
    assert "Accept" not in to_manager.text


@pytest.mark.parametrize("purpose", ["assigned", "reassigned", "reminder", "escalated"])
def test_a_chat_message_is_block_kit_as_slacks_own_sdk_reads_it(purpose: Purpose) -> None:
    """Slack's SDK models check what Slack checks (header <= 150 characters, section text
    <= 3,000, button text <= 75, button URL <= 3,000); Mattermost and Rocket.Chat show
    `text`. The longest names the events allow must still fit."""
    longest = "W" * 200
    lead = LeadSummary(
        lead_id="l1",
        name=f"{longest} {longest}",
        company=longest,
        job_title=longest,
        grade="A",
        score=1e6,
        reasons=tuple(Reason(longest, 1e6) for _ in range(3)),
        sla_deadline=NOW,
    )
    token = "t" * 200
    links = Links(
        lead="https://x/#lead-l1", accept=f"https://x/{token}", reject=f"https://x/{token}"
    )
    message = compose(purpose, lead, recipient_zone="Pacific/Chatham", links=links).chat_message()
    assert message["text"]
    for block in message["blocks"]:
        parsed = Block.parse(block)
        assert parsed is not None, block
        parsed.validate_json()  # raises SlackObjectFormationError
