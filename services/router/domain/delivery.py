"""When an outbound message (webhook, email, chat) is tried again, and when it is given up."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Literal

# The longest pause between two attempts: a receiver that is back is found within it.
LONGEST_PAUSE = timedelta(hours=1)


@dataclass(frozen=True)
class RetryPolicy:
    first_retry: timedelta
    give_up_after: timedelta

    def pause_before(self, attempt: int, rng: random.Random) -> timedelta:
        """Exponential backoff with jitter: after attempt n, between half and all of
        first_retry * 2^(n-1), so receivers that failed together are not retried together."""
        full: timedelta = min(self.first_retry * 2 ** min(attempt - 1, 30), LONGEST_PAUSE)
        return full * rng.uniform(0.5, 1.0)


@dataclass(frozen=True)
class Attempt:
    """What one try brought: an HTTP status, or an error (refused, timed out) without one."""

    status: int | None
    retry_after: str | None = None
    error: str | None = None
    # A refusal that trying again cannot change (e.g. a mail server's 5xx for an address).
    permanent: bool = False
    response_head: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass(frozen=True)
class Verdict:
    outcome: Literal["delivered", "retry", "failed"]
    retry_at: datetime | None = None
    why: str | None = None


def judge(
    attempt: Attempt,
    *,
    number: int,
    first_tried: datetime,
    now: datetime,
    policy: RetryPolicy,
    rng: random.Random,
) -> Verdict:
    """Delivered on 2xx; failed at once on any other 4xx but 429; otherwise tried again
    (429 when its Retry-After says) until `give_up_after` has passed since the first try."""
    if attempt.succeeded:
        return Verdict("delivered")
    status = attempt.status
    if attempt.permanent or (status is not None and 400 <= status < 500 and status != 429):
        return Verdict("failed", why=attempt.error or f"the receiver refused it ({status})")
    wait = retry_after(attempt.retry_after, now) if status == 429 else None
    retry_at = now + (wait if wait is not None else policy.pause_before(number, rng))
    if retry_at > first_tried + policy.give_up_after:
        return Verdict("failed", why=f"still failing after {policy.give_up_after}")
    return Verdict("retry", retry_at=retry_at)


def retry_after(value: str | None, now: datetime) -> timedelta | None:
    """A Retry-After header: seconds, or an HTTP date (RFC 9110 section 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(when - now, timedelta(0))


def should_pause(failing_since: datetime | None, now: datetime, pause_after: timedelta) -> bool:
    """A subscription whose every delivery has failed for this long is paused."""
    return failing_since is not None and now - failing_since >= pause_after
