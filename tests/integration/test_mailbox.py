"""The local mailbox `leadflow up` starts: what aiosmtplib sends it is listed at its URL."""

from __future__ import annotations

import asyncio
from email.message import EmailMessage

import aiosmtplib
import httpx
import pytest

from leadflow.mailbox import KEPT_MESSAGES, Mailbox, report_counts, running_mailbox

pytestmark = pytest.mark.integration


def _mail(subject: str, body: str, to: str = "mia.schmidt@example.com") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "leadflow@example.com"
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    return message


async def test_the_mailbox_lists_what_it_received_newest_first_and_escapes_it() -> None:
    async with running_mailbox() as running:
        await aiosmtplib.send(
            _mail("New lead: Ada", "Ada Lovelace, Acme"),
            hostname=running.host,
            port=running.smtp_port,
        )
        await aiosmtplib.send(
            _mail("<script>alert(1)</script>", "Grace & <b>Hopper</b>", to="bo.li@example.com"),
            hostname=running.host,
            port=running.smtp_port,
        )
        async with httpx.AsyncClient(base_url=running.url) as client:
            listed = (await client.get("/messages.json")).json()
            counted = (await client.get("/messages.json", params={"limit": 0})).json()
            page = (await client.get("/")).text

    assert listed["total"] == 2
    assert counted == {"total": 2, "messages": []}
    newest, oldest = listed["messages"]
    assert (oldest["sender"], oldest["recipients"]) == (
        "leadflow@example.com",
        ["mia.schmidt@example.com"],
    )
    assert (oldest["subject"], oldest["body"].strip()) == ("New lead: Ada", "Ada Lovelace, Acme")
    assert newest["recipients"] == ["bo.li@example.com"]
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Grace &amp; &lt;b&gt;Hopper&lt;/b&gt;" in page


def test_the_mailbox_keeps_only_the_latest_messages_but_counts_all() -> None:
    mailbox = Mailbox()
    raw = _mail("hello", "body").as_bytes()
    for _ in range(KEPT_MESSAGES + 3):
        mailbox.receive("leadflow@example.com", ["mia.schmidt@example.com"], raw)
    assert mailbox.total == KEPT_MESSAGES + 3
    assert len(mailbox.kept) == KEPT_MESSAGES
    assert mailbox.newest_first()[0].id == KEPT_MESSAGES + 3


async def test_the_mailbox_says_how_many_arrived_and_nothing_of_them() -> None:
    said: asyncio.Queue[str] = asyncio.Queue()
    mailbox = Mailbox()
    reporting = asyncio.create_task(report_counts(mailbox, said.put_nowait))
    try:
        mailbox.receive("leadflow@example.com", ["mia.schmidt@example.com"], b"Subject: Ada\n\nhi")
        assert await said.get() == "mailbox: 1 messages received"
    finally:
        reporting.cancel()
