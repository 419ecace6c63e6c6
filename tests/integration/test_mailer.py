"""The router's mailer against a real SMTP server (aiosmtpd): one connection for many
messages, a refused address fails for good, a connection the server dropped is reopened."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from services.router.outbound.senders import Mailer

pytestmark = pytest.mark.integration

REFUSED = "gone@example.com"


class Server:
    def __init__(self) -> None:
        self.received: list[str] = []
        self.connections = 0
        self.sessions: list[SMTP] = []

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook)
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address == REFUSED:
            return "550 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        self.received.extend(envelope.rcpt_tos)
        return "250 Message accepted"

    def protocol(self) -> SMTP:
        self.connections += 1
        session = SMTP(self, hostname="test")
        self.sessions.append(session)
        return session


@pytest.fixture
async def server() -> AsyncIterator[tuple[Server, int]]:
    handler = Server()
    listening = await asyncio.get_running_loop().create_server(handler.protocol, "127.0.0.1", 0)
    try:
        yield handler, listening.sockets[0].getsockname()[1]
    finally:
        listening.close()


async def test_one_connection_carries_many_messages_and_a_refusal_is_final(
    server: tuple[Server, int],
) -> None:
    handler, port = server
    mailer = Mailer(f"smtp://127.0.0.1:{port}", "leadflow <leads@example.com>", timeout=5)
    now = datetime.now(UTC)
    try:
        sent = await asyncio.gather(
            *(
                mailer.send(f"rep{n}@example.com", "New lead", "body", message_id=str(n), at=now)
                for n in range(5)
            )
        )
        assert all(attempt.succeeded for attempt in sent)
        assert handler.connections == 1
        assert sorted(handler.received) == [f"rep{n}@example.com" for n in range(5)]

        dropped = handler.sessions[-1].transport
        assert dropped is not None
        dropped.close()  # the server drops the idle connection
        again = await mailer.send("rep9@example.com", "New lead", "body", message_id="9", at=now)
        assert again.succeeded
        assert (handler.connections, handler.received[-1]) == (2, "rep9@example.com")

        refused = await mailer.send(REFUSED, "New lead", "body", message_id="r", at=now)
        assert refused.permanent
        assert "550" in (refused.error or "")
    finally:
        await mailer.close()
