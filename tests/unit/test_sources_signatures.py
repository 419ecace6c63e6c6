"""Webhook signatures as each sender signs, checked on the fixtures' exact bytes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks import Webhook

from services.ingest.auth import check_signature, verify_hmac_signature
from services.ingest.sources import HmacSignature, StandardSignature
from shared.problems import ProblemError

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SECRET = "leadflow-fixture-secret"  # the secret the fixtures' READMEs sign with
STANDARD_SECRET = "whsec_" + base64.b64encode(b"a standard webhooks secret").decode()


def hmac_signature(**declared: Any) -> HmacSignature:
    return HmacSignature.model_validate({"scheme": "hmac-sha256", **declared})


def refused(signature: HmacSignature | StandardSignature, body: bytes, **headers: str) -> int:
    with pytest.raises(ProblemError) as caught:
        check_signature(signature, SECRET, body, headers)
    return caught.value.status


@pytest.mark.parametrize(
    ("fixture", "declared", "header_value"),
    [
        (
            "typeform/form_response.json",
            {"header": "Typeform-Signature", "encoding": "base64", "prefix": "sha256="},
            "sha256=o441pMn9x5yIFZpTpJKES972YUL246gXrfuPI6QpleM=",
        ),
        (
            "meta-lead-ads/leadgen_notification.json",
            {"header": "X-Hub-Signature-256", "encoding": "hex", "prefix": "sha256="},
            "sha256=802ae292b26d7b5897254998f71e5e44b20b30c7bd70c1fe808eae6170cab97b",
        ),
        (  # LinkedIn, reading (a): the prefix is part of the header value
            "linkedin/lead_notification.created.json",
            {"header": "X-LI-Signature", "encoding": "hex", "prefix": "hmacsha256="},
            "hmacsha256=59c3522fcc4350a4a1908a3ccd3ebcbb9425a93a6afdb7ae9d60d412cadef92c",
        ),
        (  # LinkedIn, reading (b): the prefix is signed before the body
            "linkedin/lead_notification.created.json",
            {"header": "X-LI-Signature", "encoding": "hex", "signed": "hmacsha256={body}"},
            "5e391431db024d8c2701391daa3606fd0697bc314f175ad5080c8ae1b187c042",
        ),
    ],
)
def test_the_senders_known_answers_verify_and_a_changed_body_does_not(
    fixture: str, declared: dict[str, str], header_value: str
) -> None:
    signature = hmac_signature(**declared)
    body = (FIXTURES / fixture).read_bytes()
    headers = {declared["header"]: header_value}
    assert check_signature(signature, SECRET, body, headers) is None
    assert refused(signature, body.replace(b"1", b"2"), **headers) == 401
    assert refused(signature, body) == 401


def test_githubs_published_vector_for_x_hub_signature_256() -> None:
    assert verify_hmac_signature(
        "It's a Secret to Everybody",
        b"Hello, World!",
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        encoding="hex",
        prefix="sha256=",
    )


def test_a_signed_timestamp_is_trusted_within_its_window_only() -> None:
    signature = hmac_signature(
        header="X-Signature",
        encoding="hex",
        prefix="v0=",
        timestamp={"header": "X-Timestamp", "window_seconds": 300},
        signed="v0:{timestamp}:{body}",
    )
    body = b'{"a":1}'

    def signed_at(sent: int) -> dict[str, str]:
        digest = hmac.new(SECRET.encode(), f"v0:{sent}:".encode() + body, hashlib.sha256)
        return {"X-Signature": f"v0={digest.hexdigest()}", "X-Timestamp": str(sent)}

    now = int(time.time())
    assert check_signature(signature, SECRET, body, signed_at(now)) is None
    assert refused(signature, body, **signed_at(now - 301)) == 401
    assert refused(signature, body, **{**signed_at(now), "X-Timestamp": str(now + 1)}) == 401
    assert refused(signature, body, **{**signed_at(now), "X-Timestamp": "yesterday"}) == 401
    assert refused(signature, body, **{**signed_at(now), "X-Timestamp": "9" * 40}) == 401


def standard_headers(body: bytes) -> dict[str, str]:
    message_id, now = "msg_1", int(time.time())
    sent = datetime.fromtimestamp(now, UTC)
    signature = Webhook(STANDARD_SECRET).sign(message_id, sent, body.decode())
    return {"webhook-id": message_id, "webhook-timestamp": str(now), "webhook-signature": signature}


@pytest.mark.parametrize(
    "webhook_signature",
    ["v1,not base64!", "v1", "v1,a,b", "v1,éé", "v1,QUJD v1,%%%", ""],
)
def test_a_standard_signature_that_is_not_base64_is_a_401(webhook_signature: str) -> None:
    body = b'{"a":1}'
    headers = {**standard_headers(body), "webhook-signature": webhook_signature}
    standard = StandardSignature(scheme="standard-webhooks")
    with pytest.raises(ProblemError) as caught:
        check_signature(standard, STANDARD_SECRET, body, headers)
    assert caught.value.status == 401


def test_a_standard_webhook_answers_its_message_id_and_a_body_not_utf8_is_a_401() -> None:
    body = b'{"a":1}'
    standard = StandardSignature(scheme="standard-webhooks")
    assert check_signature(standard, STANDARD_SECRET, body, standard_headers(body)) == "msg_1"
    with pytest.raises(ProblemError) as caught:
        check_signature(standard, STANDARD_SECRET, b"\xff\xfe", standard_headers(body))
    assert caught.value.status == 401


@given(presented=st.one_of(st.none(), st.text()), prefix=st.sampled_from(["", "sha256="]))
def test_no_presented_signature_makes_the_check_raise(presented: str | None, prefix: str) -> None:
    for encoding in ("hex", "base64"):
        assert not verify_hmac_signature(
            SECRET, b"body", presented, encoding=encoding, prefix=prefix
        )
