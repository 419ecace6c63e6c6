"""Who may send what: API keys scoped to channels, and signed webhooks."""

from __future__ import annotations

from collections.abc import Mapping

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

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


def verify_standard_webhook(secret: str, body: bytes, headers: Mapping[str, str]) -> str:
    """Check a Standard Webhooks signature and timestamp window; answer the webhook-id."""
    try:
        Webhook(secret).verify(body, dict(headers), json_parse=False)
    except WebhookVerificationError as error:
        raise ProblemError(401, f"webhook not verified: {error}") from error
    return headers["webhook-id"]
