"""Who may send what: API keys scoped to channels, and signed webhooks."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from services.ingest.sources.model import BODY, TIMESTAMP, HmacSignature, StandardSignature
from shared.auth import bearer_token, same_secret
from shared.problems import ProblemError

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="leadflow-ingest"'}


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The API key from `X-API-Key`, or from `Authorization: Bearer <key>`."""
    return headers.get("x-api-key") or bearer_token(headers)


def channels_for_key(api_keys: Mapping[str, list[str]], key: str | None) -> list[str]:
    """The channels a key may send; 401 for a missing or unknown key."""
    if not key:
        raise ProblemError(401, "an API key is required (X-API-Key header)", headers=_CHALLENGE)
    for known, channels in api_keys.items():
        if same_secret(known, key):
            return channels
    raise ProblemError(401, "the API key is not valid", headers=_CHALLENGE)


def webhook_secret(secrets: Mapping[str, str], provider: str) -> str:
    """The provider's secret; a provider with no secret does not exist for callers (404)."""
    secret = secrets.get(provider)
    if secret is None:
        raise ProblemError(404, f"no webhook is configured for provider {provider!r}")
    return secret


def standard_secret_problem(secret: str) -> str | None:
    """Why a secret cannot sign Standard Webhooks (`whsec_` + base64), else None."""
    try:
        Webhook(secret)
    except Exception as error:  # the library raises several kinds for a bad secret
        return f"not a Standard Webhooks secret (whsec_ + base64): {type(error).__name__}"
    return None


def verify_standard_webhook(secret: str, body: bytes, headers: Mapping[str, str]) -> str:
    """Check a Standard Webhooks signature and timestamp window; answer the webhook-id."""
    verifier = Webhook(secret)
    try:
        verifier.verify(body, dict(headers), json_parse=False)
    except WebhookVerificationError as error:
        raise ProblemError(401, f"webhook not verified: {error}") from error
    except UnicodeDecodeError as error:
        raise ProblemError(401, "webhook not verified: the body is not UTF-8") from error
    except ValueError as error:  # not base64, or an entry that is not `v1,<signature>`
        message = "webhook not verified: webhook-signature is not v1,<base64> entries"
        raise ProblemError(401, message) from error
    return headers["webhook-id"]


def _base64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def verify_hmac_signature(
    secret: str, signed: bytes, presented: str | None, *, encoding: str, prefix: str = ""
) -> bool:
    """Whether `presented` is `prefix` + the hex or base64 HMAC-SHA256 of `signed`.

    Missing, garbage or a wrong prefix is simply False: the caller answers 401.
    """
    if not presented or not secret:
        return False
    value = presented.strip()
    if value[: len(prefix)].lower() != prefix.lower():
        return False
    value = value[len(prefix) :]
    try:
        given = bytes.fromhex(value) if encoding == "hex" else _base64(value)
    except ValueError:
        return False
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    return hmac.compare_digest(given, expected)


def _signed_timestamp(signature: HmacSignature, headers: Mapping[str, str]) -> str:
    """The declared timestamp header, if within its window (the sender's clock may drift)."""
    assert signature.timestamp is not None
    header = signature.timestamp.header
    sent = (headers.get(header) or "").strip()
    window = timedelta(seconds=signature.timestamp.window_seconds)
    try:
        outside = abs(datetime.now(UTC) - datetime.fromtimestamp(int(sent), UTC)) > window
    except (ValueError, OverflowError, OSError):
        raise ProblemError(401, f"webhook not verified: {header} is not a Unix time") from None
    if outside:
        raise ProblemError(401, f"webhook not verified: {header} is outside {window}")
    return sent


def check_signature(
    signature: HmacSignature | StandardSignature,
    secret: str,
    body: bytes,
    headers: Mapping[str, str],
) -> str | None:
    """Verify a webhook as its source declares; answer its delivery id when it has one."""
    if isinstance(signature, StandardSignature):
        return verify_standard_webhook(secret, body, headers)
    before, after = signature.signed_template.split("{" + BODY + "}")
    if signature.timestamp is not None:
        sent = _signed_timestamp(signature, headers)
        before, after = (part.replace("{" + TIMESTAMP + "}", sent) for part in (before, after))
    signed = before.encode() + body + after.encode()
    presented = headers.get(signature.header)
    if not verify_hmac_signature(
        secret, signed, presented, encoding=signature.encoding, prefix=signature.prefix
    ):
        raise ProblemError(401, f"webhook not verified: bad or missing {signature.header}")
    return None
