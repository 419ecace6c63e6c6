"""Bearer credentials, as every service reads them."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from fastapi import Request

from shared.problems import ProblemError
from shared.settings import Settings


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The credential of `Authorization: Bearer <token>`, if any."""
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    return credentials.strip() or None if scheme.lower() == "bearer" else None


def same_secret(presented: str, expected: str) -> bool:
    return hmac.compare_digest(presented.encode(), expected.encode())


async def require_admin(request: Request) -> None:
    """FastAPI dependency: the caller must present the admin key as a bearer token."""
    settings: Settings = request.app.state.settings
    token = bearer_token(request.headers)
    challenge = {"WWW-Authenticate": 'Bearer realm="leadflow"'}
    if token is None:
        raise ProblemError(
            401, "send the admin key as Authorization: Bearer <key>", headers=challenge
        )
    if settings.admin_key is None or not same_secret(token, settings.admin_key):
        raise ProblemError(401, "the admin key is not valid", headers=challenge)
