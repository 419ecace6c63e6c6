"""A local mailbox for development: an SMTP server that keeps what it receives in memory,
and a page (and `/messages.json`) that lists it.

`leadflow up` starts one when no `LEADFLOW_SMTP_URL` is set, so the mail the services send
can be read at a local URL. Messages go to that page only; the log says how many arrived.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import html
import itertools
import logging
import socket
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import uvicorn
from aiosmtpd.smtp import SMTP, Envelope, Session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from shared.embedded import LOCALHOST

KEPT_MESSAGES = 500
# One count line per burst of mail, not one per message.
REPORT_EVERY_SECONDS = 2.0

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReceivedMessage:
    id: int
    received_at: datetime
    sender: str
    recipients: tuple[str, ...]
    subject: str
    body: str


def _readable(content: bytes) -> tuple[str, str]:
    """The subject and the text a person reads (the plain part, else the HTML source)."""
    message = email.message_from_bytes(content, policy=email.policy.default)
    subject = str(message.get("subject", ""))
    try:
        part = message.get_body(preferencelist=("plain", "html"))
        body = part.get_content() if part is not None else ""
    except (LookupError, ValueError):
        body = content.decode("utf-8", errors="replace")
    return subject, str(body)


@dataclass
class Mailbox:
    """The last `KEPT_MESSAGES` messages received, and how many arrived in all."""

    kept: deque[ReceivedMessage] = field(default_factory=lambda: deque(maxlen=KEPT_MESSAGES))
    total: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def receive(self, sender: str, recipients: list[str], content: bytes) -> ReceivedMessage:
        subject, body = _readable(content)
        message = ReceivedMessage(
            next(self._ids), datetime.now(UTC), sender, tuple(recipients), subject, body
        )
        self.kept.append(message)
        self.total += 1
        self.arrived.set()
        return message

    def newest_first(self) -> list[ReceivedMessage]:
        return list(reversed(self.kept))

    # aiosmtpd's hook: called once a message's data has been received whole.
    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        content = envelope.original_content or b""
        self.receive(envelope.mail_from or "", list(envelope.rcpt_tos), content)
        return "250 Message accepted for delivery"


def _page(mailbox: Mailbox) -> str:
    rows = "\n".join(
        "<details><summary>"
        f"<time>{message.received_at:%Y-%m-%d %H:%M:%S} UTC</time> "
        f"<b>{html.escape(message.subject or '(no subject)')}</b> "
        f"from {html.escape(message.sender)} to {html.escape(', '.join(message.recipients))}"
        f"</summary><pre>{html.escape(message.body)}</pre></details>"
        for message in mailbox.newest_first()
    )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width'><title>leadflow mailbox</title>"
        "<style>body{font:15px system-ui,sans-serif;margin:1.5rem;max-width:70rem}"
        "details{border-bottom:1px solid #ddd;padding:.4rem 0}summary{cursor:pointer}"
        "time{color:#666}pre{white-space:pre-wrap;overflow-wrap:anywhere;background:#f6f6f6;"
        "padding:.8rem}</style></head><body>"
        f"<h1>leadflow mailbox</h1><p>{mailbox.total} received; the last {len(mailbox.kept)} "
        f"are kept (at most {KEPT_MESSAGES}), newest first. Click one to read it. "
        "<a href=/messages.json>As JSON</a></p>"
        f"{rows or '<p>No mail yet.</p>'}</body></html>"
    )


def mailbox_app(mailbox: Mailbox) -> Starlette:
    async def page(_: Request) -> HTMLResponse:
        return HTMLResponse(_page(mailbox))

    async def messages(request: Request) -> JSONResponse:
        """Every kept message, newest first; `?limit=0` answers only the count."""
        limit = request.query_params.get("limit", "")
        newest = mailbox.newest_first()
        if limit.isdigit():
            newest = newest[: int(limit)]
        return JSONResponse(
            {
                "total": mailbox.total,
                "messages": [
                    asdict(message) | {"received_at": message.received_at.isoformat()}
                    for message in newest
                ],
            }
        )

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/", page),
            Route("/messages.json", messages),
            Route("/healthz", healthz),
        ]
    )


def _listening_socket(host: str, port: int) -> socket.socket:
    """A socket already listening, so clients may connect before the server runs."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(100)
    sock.setblocking(False)
    return sock


@dataclass
class RunningMailbox:
    mailbox: Mailbox
    smtp_port: int
    http_port: int
    host: str
    serving: asyncio.Task[None]  # the page's server: done once it was told to stop

    @property
    def smtp_url(self) -> str:
        return f"smtp://{self.host}:{self.smtp_port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.http_port}"


@asynccontextmanager
async def running_mailbox(
    smtp_port: int = 0, http_port: int = 0, host: str = LOCALHOST
) -> AsyncIterator[RunningMailbox]:
    """A mailbox serving SMTP and its page on these ports (0: any free one) until exit."""
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs each peer
    mailbox = Mailbox()
    loop = asyncio.get_running_loop()
    smtp_socket = _listening_socket(host, smtp_port)
    http_socket = _listening_socket(host, http_port)
    smtp = await loop.create_server(
        lambda: SMTP(mailbox, hostname="leadflow-mailbox", enable_SMTPUTF8=True, loop=loop),
        sock=smtp_socket,
    )
    http = uvicorn.Server(
        uvicorn.Config(mailbox_app(mailbox), log_config=None, access_log=False, lifespan="off")
    )
    serving = asyncio.create_task(http.serve(sockets=[http_socket]))
    running = RunningMailbox(
        mailbox, smtp_socket.getsockname()[1], http_socket.getsockname()[1], host, serving
    )
    try:
        yield running
    finally:
        http.should_exit = True
        await serving
        smtp.close()
        http_socket.close()


async def report_counts(mailbox: Mailbox, say: Callable[[str], None]) -> None:
    """Say how many messages arrived whenever more did (a count, never their content)."""
    reported = 0
    while True:
        await mailbox.arrived.wait()
        mailbox.arrived.clear()
        if mailbox.total != reported:
            reported = mailbox.total
            say(f"mailbox: {reported} messages received")
        await asyncio.sleep(REPORT_EVERY_SECONDS)


async def serve_mailbox(smtp_port: int, http_port: int, host: str = LOCALHOST) -> None:
    """Run a mailbox until SIGINT/SIGTERM (uvicorn's handlers end it)."""
    async with running_mailbox(smtp_port, http_port, host) as running:
        log.info(
            "mailbox listening",
            extra={"smtp_url": running.smtp_url, "url": running.url},
        )
        reporting = asyncio.create_task(report_counts(running.mailbox, log.info))
        try:
            await running.serving
        finally:
            reporting.cancel()
