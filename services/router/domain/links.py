"""One-click links in a rep's notification: signed, for one lead, one rep and one action,
and good only until they expire, so that they work without signing in."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

OneClickAction = Literal["accept", "reject"]


class LinkRejected(Exception):
    """The link is not one we signed, or it has expired."""


@dataclass(frozen=True)
class OneClick:
    lead_id: str
    rep_id: str
    action: OneClickAction
    expires: datetime


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(secret: bytes, body: str) -> str:
    return _encode(hmac.new(secret, body.encode(), hashlib.sha256).digest())


def sign(secret: bytes, click: OneClick) -> str:
    claims = [click.lead_id, click.rep_id, click.action, int(click.expires.timestamp())]
    body = _encode(json.dumps(claims, separators=(",", ":")).encode())
    return f"{body}.{_signature(secret, body)}"


def verify(secret: bytes, token: str, now: datetime) -> OneClick:
    body, _, signature = token.partition(".")
    if not hmac.compare_digest(signature, _signature(secret, body)):
        raise LinkRejected("this link is not valid")
    lead_id, rep_id, action, expires = json.loads(_decode(body))
    click = OneClick(lead_id, rep_id, action, datetime.fromtimestamp(expires, UTC))
    if now >= click.expires:
        raise LinkRejected("this link has expired")
    return click


def link_secret(configured: str | None, admin_key: str | None) -> bytes | None:
    """The configured secret, else one derived from the admin key (never the key itself)."""
    if configured:
        return configured.encode()
    if admin_key:
        return hmac.new(admin_key.encode(), b"leadflow one-click links", hashlib.sha256).digest()
    return None
