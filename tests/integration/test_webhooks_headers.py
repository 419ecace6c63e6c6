"""No header value makes a webhook route answer 5xx: any text, bytes, bad base64, huge.

The whole ingest app in-process, its publisher a fake (the broker is not what is tested),
called through ASGI directly so that header values no HTTP client would send reach it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from collections.abc import MutableMapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from standardwebhooks import Webhook

from services.ingest.bootstrap import create_app
from services.ingest.domain import EncodedEvent
from shared.settings import Settings
from tests.integration.test_webhooks import FIXTURES, SECRET, signed, sources_file

pytestmark = pytest.mark.integration

STANDARD_SECRET = "whsec_" + base64.b64encode(b"header fuzzing secret").decode()
EXTRA_SOURCES = [
    {
        "name": "timestamped",
        "signature": {
            "scheme": "hmac-sha256",
            "header": "X-Signature",
            "encoding": "hex",
            "prefix": "v0=",
            "timestamp": {"header": "X-Timestamp"},
            "signed": "v0:{timestamp}:{body}",
        },
        "interaction": {
            "channel": {"value": "web"},
            "type": {"value": "form_submit"},
            "contact": {"email": "email"},
        },
    },
    {
        "name": "standard-source",
        "signature": {"scheme": "standard-webhooks"},
        "interaction": {
            "channel": {"value": "web"},
            "type": {"value": "form_submit"},
            "contact": {"email": "email"},
        },
    },
]
# Each route, a body it takes, and the headers its signature is read from.
ROUTES: dict[str, tuple[bytes, tuple[str, ...]]] = {
    "mautic": ((FIXTURES / "mautic/form_on_submit.json").read_bytes(), ("webhook-signature",)),
    "typeform": (
        (FIXTURES / "typeform/form_response.json").read_bytes(),
        ("typeform-signature",),
    ),
    "linkedin": (
        (FIXTURES / "linkedin/lead_notification.created.json").read_bytes(),
        ("x-li-signature",),
    ),
    "meta-lead-ads": (
        (FIXTURES / "meta-lead-ads/leadgen_notification.json").read_bytes(),
        ("x-hub-signature-256",),
    ),
    "timestamped": (b'{"email": "a@example.com"}', ("x-signature", "x-timestamp")),
    "standard": (
        b'{"channel": "web", "type": "form_submit", "contact": {"anonymous_id": "a"}}',
        ("webhook-id", "webhook-timestamp", "webhook-signature"),
    ),
    "standard-source": (
        b'{"email": "a@example.com"}',
        ("webhook-id", "webhook-timestamp", "webhook-signature"),
    ),
}


class FakePublisher:
    async def publish(self, events: Sequence[EncodedEvent]) -> None:
        return None

    async def is_ready(self) -> bool:
        return True


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    sources = sources_file(tmp_path_factory.mktemp("sources"), *EXTRA_SOURCES)
    secrets = dict.fromkeys(ROUTES, SECRET) | {
        "standard": STANDARD_SECRET,
        "standard-source": STANDARD_SECRET,
    }
    application = create_app(
        Settings(
            KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:9",
            LEADFLOW_WEBHOOK_SECRETS=secrets,
            LEADFLOW_SOURCES=sources,
        )
    )
    application.state.publisher = FakePublisher()
    return application


async def status_of(
    app: FastAPI, path: str, headers: list[tuple[bytes, bytes]], body: bytes
) -> int:
    """The status the app answers, sent as raw ASGI (no client checks the headers)."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("ingest", 80),
    }
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    try:
        await app(scope, receive, send)
    except Exception:  # an error that escaped every handler is what the client sees as 500
        return 500
    return status


def right_headers(route: str, body: bytes) -> dict[bytes, bytes]:
    """The headers that verify `body` on `route` now, by header name."""
    now = int(time.time())
    if route.startswith("standard"):
        sent = datetime.fromtimestamp(now, UTC)
        signature = Webhook(STANDARD_SECRET).sign("msg_fuzz", sent, body.decode())
        return {
            b"webhook-id": b"msg_fuzz",
            b"webhook-timestamp": str(now).encode(),
            b"webhook-signature": signature.encode(),
        }
    if route == "timestamped":
        digest = hmac.new(SECRET.encode(), f"v0:{now}:".encode() + body, hashlib.sha256)
        return {
            b"x-signature": f"v0={digest.hexdigest()}".encode(),
            b"x-timestamp": str(now).encode(),
        }
    return {name.lower().encode(): value.encode() for name, value in signed(route, body).items()}


texts = st.text(max_size=300)
header_values = st.one_of(
    texts.map(str.encode),  # any text, as UTF-8 (a server reads it as Latin-1)
    st.binary(max_size=300),
    texts.map(lambda text: f"v1,{text}".encode()),  # Standard Webhooks, not base64
    texts.map(lambda text: f"v1,{text} v1".encode()),
    texts.map(lambda text: f"sha256={text}".encode()),
    texts.map(lambda text: f"hmacsha256={text}".encode()),
    st.integers().map(lambda number: str(number).encode()),  # timestamps of any size
    st.floats().map(lambda number: str(number).encode()),
    st.sampled_from([b"x" * 200_000, "é".encode() * 50_000, b"v1," + b"A" * 100_000]),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    route=st.sampled_from(sorted(ROUTES)),
    fuzzed=st.dictionaries(st.integers(min_value=0, max_value=2), header_values, max_size=3),
    extra=st.tuples(st.sampled_from([b"x-anything", b"content-type"]), header_values),
)
def test_no_header_value_makes_a_webhook_route_answer_5xx(
    app: FastAPI, route: str, fuzzed: dict[int, bytes], extra: tuple[bytes, bytes]
) -> None:
    body, names = ROUTES[route]
    # Start from headers that verify, so a spoilt one is met where it is read.
    headers = {b"content-type": b"application/json", **right_headers(route, body)}
    for position, value in fuzzed.items():
        if position < len(names):
            headers[names[position].encode()] = value
    headers[extra[0]] = extra[1]
    status = asyncio.run(status_of(app, f"/v1/webhooks/{route}", list(headers.items()), body))
    assert 200 <= status < 500, (route, status)


def test_the_right_headers_are_taken_so_the_fuzzing_reaches_past_them(app: FastAPI) -> None:
    for route, (body, _) in ROUTES.items():
        headers = {b"content-type": b"application/json", **right_headers(route, body)}
        status = asyncio.run(status_of(app, f"/v1/webhooks/{route}", list(headers.items()), body))
        assert status == 202, route
