"""The wires outbound messages leave by: HTTP (webhooks, chat) and SMTP (email)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import secrets
from collections.abc import Sequence
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib
import httpx
from standardwebhooks.webhooks import Webhook

from services.router.domain.delivery import Attempt

SECRET_PREFIX = "whsec_"  # noqa: S105 (the format's prefix, not a secret)


def new_signing_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and 24 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def webhook_headers(
    signing_secrets: Sequence[str], message_id: str, at: datetime, body: str
) -> dict[str, str]:
    """Standard Webhooks headers; during a rotation, one signature per secret, so the
    receiver may verify with either."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": " ".join(
            Webhook(secret).sign(message_id, at, body) for secret in signing_secrets
        ),
        "content-type": "application/cloudevents+json",
        "user-agent": "leadflow-webhooks/1",
    }


class HttpPoster:
    """POSTs to webhook receivers and chat services; a refused or silent one is an attempt
    without a status, never an exception. Its connections are opened again after `close`."""

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._client: httpx.AsyncClient | None = None

    async def post(self, url: str, content: bytes, headers: dict[str, str]) -> Attempt:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout, follow_redirects=False)
        try:
            response = await self._client.post(url, content=content, headers=headers)
        except httpx.TimeoutException:
            return Attempt(status=None, error="no answer in time")
        except httpx.HTTPError as error:
            return Attempt(status=None, error=f"could not connect: {type(error).__name__}")
        return Attempt(
            status=response.status_code,
            retry_after=response.headers.get("retry-after"),
            response_head=response.text,
            error=None if response.is_success else f"answered {response.status_code}",
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


class Mailer:
    """Sends through the SMTP server of `LEADFLOW_SMTP_URL`:
    smtp://[user:password@]host[:port][?starttls=true], or smtps:// for TLS from the start.

    One connection, kept between messages (a new one per message costs the router's loop a
    handshake each), used by one message at a time, and opened again when the server closed
    it while idle."""

    def __init__(self, smtp_url: str, sender: str, timeout: float) -> None:
        parts = urlsplit(smtp_url)
        options = parse_qs(parts.query)
        self._sender = sender
        starttls = options.get("starttls", ["false"])[0].lower() in ("1", "true", "yes")
        self._client = aiosmtplib.SMTP(
            hostname=parts.hostname,
            port=parts.port,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            use_tls=parts.scheme == "smtps",
            start_tls=starttls or None,
            timeout=timeout,
        )
        self._turn = asyncio.Lock()

    async def send(
        self, to: str, subject: str, body: str, *, message_id: str, at: datetime
    ) -> Attempt:
        message = EmailMessage()
        message["From"] = self._sender
        message["To"] = to
        message["Subject"] = subject
        message["Date"] = format_datetime(at)
        # The same notice sent twice carries the same id, so mail clients show it once.
        message["Message-ID"] = f"<{message_id}@leadflow>"
        message.set_content(body)
        async with self._turn:
            try:
                try:
                    await self._send_connected(message)
                except aiosmtplib.SMTPServerDisconnected:
                    await self._send_connected(message)  # it timed the idle connection out
            except (aiosmtplib.SMTPResponseException, aiosmtplib.SMTPRecipientsRefused) as error:
                self._client.close()  # the next message starts from a fresh connection
                codes = [r.code for r in getattr(error, "recipients", [error])]
                return Attempt(
                    status=None,
                    error=f"the mail server answered {', '.join(map(str, codes))}",
                    permanent=all(500 <= code < 600 for code in codes),
                )
            except (aiosmtplib.SMTPException, OSError) as error:
                self._client.close()
                return Attempt(status=None, error=f"could not send: {type(error).__name__}")
        return Attempt(status=250)

    async def _send_connected(self, message: EmailMessage) -> None:
        if not self._client.is_connected:
            await self._client.connect()
        await self._client.send_message(message)

    async def close(self) -> None:
        if self._client.is_connected:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await self._client.quit()
