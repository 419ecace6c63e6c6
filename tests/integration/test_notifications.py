"""Notices to people through a real SMTP server (aiosmtpd) and a real chat webhook: the
rep on hand-off, the reminder before the deadline, the reassignment, the manager on
escalation; one-click links that work without signing in."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
import yaml

from leadflow.mailbox import ReceivedMessage, RunningMailbox, running_mailbox
from shared.settings import Settings
from tests.receivers import Receiver, running_receiver
from tests.stacks import ADMIN, ServedStack, served_stack

pytestmark = pytest.mark.integration

SLA_SECONDS = 5  # the reminder comes at 80 % of it: 4 s after the assignment
MANAGER = "dach-lead@example.com"
REPS = {
    "mia@example.com": "Europe/Berlin",
    "noah@example.com": "America/New_York",
}


@pytest.fixture(scope="module")
async def mailbox() -> AsyncIterator[RunningMailbox]:
    async with running_mailbox() as running:
        yield running


@pytest.fixture(scope="module")
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as running:
        yield running


@pytest.fixture(scope="module")
async def stack(
    settings: Settings,
    database_url: str,
    mailbox: RunningMailbox,
    receiver: Receiver,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[ServedStack]:
    definitions = yaml.safe_load(settings.definitions_path.read_text())
    for sla in definitions["routing"]["sla"].values():
        sla["accept_within_minutes"] = SLA_SECONDS / 60
    path = tmp_path_factory.mktemp("definitions") / "lead-definitions.yaml"
    path.write_text(yaml.safe_dump(definitions))
    notifying = settings.model_copy(
        update={
            "database_url": database_url,
            "definitions_path": path,
            "smtp_url": mailbox.smtp_url,
            "team_chat_webhooks": {"dach": f"{receiver.url}/chat/dach"},
            "public_url": "https://leads.example.com",
        }
    )
    async with served_stack(notifying, routers=2) as served:  # two dispatchers compete
        yield served


async def mail_where(
    mailbox: RunningMailbox, found: Callable[[ReceivedMessage], bool], count: int = 1
) -> list[ReceivedMessage]:
    """Wait until `count` received messages match."""
    async with asyncio.timeout(SLA_SECONDS * 5):
        while True:
            mailbox.mailbox.arrived.clear()
            matching = [m for m in mailbox.mailbox.kept if found(m)]
            if len(matching) >= count:
                return matching
            await mailbox.mailbox.arrived.wait()


async def handed_off(stack: ServedStack, email: str, first_name: str = "Ada") -> None:
    event = {
        "channel": "web",
        "type": "demo_request",
        "campaign": "demo-request",
        "contact": {
            "email": email,
            "first_name": first_name,
            "last_name": "Lovelace",
            "company": "Analytical Engines",
            "job_title": "CTO",
            "country": "DE",
        },
    }
    assert (await stack.ingest.post("/v1/events", json=event)).status_code == 202


def lines(message: ReceivedMessage) -> str:
    return message.body.replace("\r\n", "\n")


def link(message: ReceivedMessage, label: str) -> str:
    found = re.search(rf"^{label}: (\S+)$", lines(message), re.MULTILINE)
    assert found, f"no {label} link in the message"
    return found.group(1).replace("https://leads.example.com", "")


async def test_the_rep_is_told_reminded_and_the_manager_told_when_nobody_follows_up(
    stack: ServedStack,
    mailbox: RunningMailbox,
    receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    for address, zone in REPS.items():
        created = await stack.router.post(
            "/v1/reps",
            json={
                "name": address.split("@")[0].title(),
                "team": "dach",
                "capacity": 5,
                "email": address,
                "timezone": zone,
                "chat_webhook_url": f"{receiver.url}/chat/{address.split('@')[0]}",
            },
            headers=ADMIN,
        )
        assert created.status_code == 201, created.text
        assert created.json()["email"] == address
    await handed_off(stack, "ada@example.com")

    [assigned] = await mail_where(mailbox, lambda m: m.subject.startswith("New lead for you"))
    [first_rep] = assigned.recipients
    second_rep = next(address for address in REPS if address != first_rep)
    assert assigned.subject == "New lead for you: Ada Lovelace (CTO, Analytical Engines)"
    zone_name = "CET" if REPS[first_rep] == "Europe/Berlin" else "EST"
    assert re.search(rf"^Follow up by: .* {zone_name}$", lines(assigned), re.MULTILINE)
    assert re.search(r"^Why: .*\(\+\d+\)", lines(assigned), re.MULTILINE), "the top reasons"
    assert re.search(r"^Grade [ABC], score \d+$", lines(assigned), re.MULTILINE)
    lead_link = link(assigned, "Open the lead")
    assert lead_link.startswith("/#lead-")

    def to(address: str, subject: str) -> Callable[[ReceivedMessage], bool]:
        return lambda m: m.recipients == (address,) and m.subject.startswith(subject)

    await mail_where(mailbox, to(first_rep, "Reminder"))
    await mail_where(mailbox, to(second_rep, "A lead was reassigned to you"))
    await mail_where(mailbox, to(second_rep, "Reminder"))
    [escalation] = await mail_where(mailbox, to(MANAGER, "Escalation"))
    assert f"Assigned to {second_rep.split('@')[0].title()}" in escalation.body
    assert "Accept:" not in escalation.body, "one-click links are for the rep alone"

    subjects = [(m.recipients, m.subject.split(":")[0]) for m in mailbox.mailbox.kept]
    assert len(subjects) == len(set(subjects)) == 5, "each notice once"
    team_channel = [r.json()["text"].split(":")[0] for r in receiver.on("/chat/dach")]
    assert team_channel == [
        "New lead for you",
        "A lead was reassigned to you",
        "Escalation",
    ]
    own_chat = receiver.on(f"/chat/{first_rep.split('@')[0]}")
    assert [r.json()["text"].split(":")[0] for r in own_chat] == [
        "New lead for you",
        "Reminder",
    ]
    assert own_chat[0].json()["blocks"][0]["type"] == "header"
    assert "Lovelace" not in caplog.text, "personal data never goes to logs"
    assert "@example.com" not in caplog.text


async def test_a_one_click_link_accepts_without_signing_in_and_the_reminder_is_dropped(
    stack: ServedStack, mailbox: RunningMailbox
) -> None:
    await handed_off(stack, "grace@example.com", first_name="Grace")
    [assigned] = await mail_where(
        mailbox, lambda m: m.subject.startswith("New lead for you: Grace")
    )
    accept = link(assigned, "Accept")
    async with httpx.AsyncClient(base_url=str(stack.router.base_url)) as browser:
        page = await browser.get(accept, headers={"Accept": "text/html"})
        assert page.status_code == 200
        assert "<form method=post>" in page.text
        assert "Analytical Engines" in page.text
        done = await browser.post(accept, headers={"Accept": "text/html"})
        assert done.status_code == 200, done.text
        assert "Accepted" in done.text
        again = await browser.post(accept)
        assert again.status_code == 409
        forged = await browser.get(accept[:-2] + "xx")
        assert forged.status_code == 403
        assert forged.headers["content-type"] == "application/problem+json"

    async with asyncio.timeout(SLA_SECONDS * 3):
        while True:
            skipped = (
                await stack.router.get("/v1/notifications?status=skipped", headers=ADMIN)
            ).json()
            if any(n["purpose"] == "reminder" for n in skipped):
                break
            await asyncio.sleep(0.2)
