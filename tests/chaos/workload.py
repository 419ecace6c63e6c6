"""What a chaos run sends: the people of `leadflow demo`, their interactions over four days in
a seeded random order, and the sender that posts them one by one as a real source does.

The plan is made once per test and sent unchanged to both runs, so both see the same ids,
event times, contacts and posting order. Only a 202 counts as accepted: a refused
connection, a timeout or a 503 is sent again, with the same id, until ingest accepts it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bench.servers import HttpConnection, request_head
from leadflow.demo import SHOW, Person, interactions_of, synthetic_people
from shared.events import Contact
from tests.chaos.stack import API_KEY

PROBE_DOMAIN = "chaos-probe.test"
REQUEST_TIMEOUT_SECONDS = 10.0
MAX_RETRY_DELAY_SECONDS = 2.0
_CONTACT_FIELDS = frozenset(Contact.model_fields)


@dataclass(frozen=True)
class Plan:
    """Interactions in the order they are posted (each with its own id), and who sent them."""

    seed: int
    events: list[dict[str, Any]]
    people: list[Person]
    now: datetime


def _badge_scan(row: dict[str, Any]) -> dict[str, Any]:
    """A row of the demo's tradeshow file as the interaction ingest makes of it."""
    contact = {key: value for key, value in row.items() if key in _CONTACT_FIELDS and value}
    notes = {"notes": row["notes"]} if row.get("notes") else {}
    return {
        "channel": "tradeshow",
        "type": row["interaction"],
        "time": row["scanned_at"],
        "campaign": SHOW,
        "contact": contact,
        "properties": notes,
    }


def make_plan(seed: int, interactions: int, leads: int, now: datetime) -> Plan:
    """About `interactions` interactions of `leads` people, in a random order fixed by `seed`.

    Each person comes back for another visit (a journey of `leadflow demo`) until the total
    is reached, so most have several, over the four days before `now`.
    """
    rng = random.Random(seed)
    people = synthetic_people(seed, f"chaos{seed}", leads)
    events: list[dict[str, Any]] = []
    order = list(people)
    for visit in itertools.count():
        rng.shuffle(order)
        for person in order:
            journey, scans = interactions_of(person, rng, now)
            events += journey + [_badge_scan(scan) for scan in scans]
            if len(events) >= interactions:
                break
        if len(events) >= interactions or visit > 100:
            break
    rng.shuffle(events)
    for index, event in enumerate(events):
        event["id"] = f"chaos:{seed}:{index}"
    return Plan(seed, events, people, now)


def identity_of(event: dict[str, Any]) -> str:
    """The lead identity an interaction names: its email, else its anonymous id."""
    contact = event["contact"]
    email = contact.get("email")
    return f"email:{email.lower()}" if email else f"anon:{contact['anonymous_id']}"


def leads_of(events: list[dict[str, Any]]) -> dict[str, str]:
    """Event id -> the identity of the lead it ends up in: an anonymous visitor who later
    gives their email (an interaction with both) is that email's lead."""
    known_as = {
        event["contact"]["anonymous_id"]: identity_of(event)
        for event in events
        if event["contact"].get("anonymous_id") and event["contact"].get("email")
    }
    return {
        event["id"]: known_as.get(event["contact"].get("anonymous_id"), identity_of(event))
        for event in events
    }


def probe_event(number: int, seed: int) -> dict[str, Any]:
    """A demo request of a person of its own: posted right after a fault, it shows when the
    system accepts, scores and assigns again. Probes are left out of every comparison."""
    return {
        "id": f"chaos-probe:{seed}:{number}",
        "channel": "web",
        "type": "demo_request",
        "campaign": "demo-request",
        "contact": {
            "email": f"probe{number}@{PROBE_DOMAIN}",
            "company": "Probe GmbH",
            "country": "DE",
            "company_size": 300,
            "job_title": "VP Sales",
        },
        "properties": {"form": "book-a-demo"},
    }


def is_probe(email: str | None) -> bool:
    return bool(email) and str(email).endswith(f"@{PROBE_DOMAIN}")


@dataclass
class Sender:
    """Posts interactions to ingest (`POST /v1/events`, one per request) over keep-alive
    connections, each at its slot of a fixed-rate schedule, retrying until a 202."""

    port: int
    rate: float
    connections: int = 16
    give_up_after: float = 300.0
    accepted: dict[str, float] = field(default_factory=dict)  # id -> monotonic time of 202
    answers: Counter[str] = field(default_factory=Counter)  # "202", "503", "refused", ...
    attempts: int = 0
    rejected: dict[str, str] = field(default_factory=dict)  # id -> the answer (4xx)
    abandoned: list[str] = field(default_factory=list)  # never accepted in time
    taken: int = 0  # slots started
    started: float = 0.0  # time.monotonic() when the load started
    started_wall: float = 0.0  # and time.time()

    def _request(self, event: dict[str, Any]) -> bytes:
        body = json.dumps(event, separators=(",", ":")).encode()
        head = request_head("POST", self.port, "/v1/events", {"X-API-Key": API_KEY}, len(body))
        return head + body

    async def post(
        self,
        event: dict[str, Any],
        connection: list[HttpConnection | None],
        within: float | None = None,
    ) -> bool:
        """Post until 202 (True), a 4xx other than 429 (False) or for `within` seconds
        (`give_up_after` by default; False). `connection` holds the worker's connection,
        opened again whenever it breaks."""
        request, delay = self._request(event), 0.1
        deadline = time.monotonic() + (self.give_up_after if within is None else within)
        while time.monotonic() < deadline:
            self.attempts += 1
            status, answer = await self._attempt(request, connection)
            if status == 202:
                self.accepted[event["id"]] = time.monotonic()
                return True
            if status is not None and 400 <= status < 500 and status != 429:
                self.rejected[event["id"]] = f"{status} {answer[:300]!r}"
                return False
            await asyncio.sleep(delay)  # refused, timed out, 5xx or 429: the same id again
            delay = min(delay * 2, MAX_RETRY_DELAY_SECONDS)
        self.abandoned.append(event["id"])
        return False

    async def _attempt(
        self, request: bytes, holder: list[HttpConnection | None]
    ) -> tuple[int | None, bytes]:
        try:
            connection = holder[0] or await HttpConnection.open(self.port)
            holder[0] = connection
            async with asyncio.timeout(REQUEST_TIMEOUT_SECONDS):
                status, answer = await connection.request(request)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as error:
            self.answers["timeout" if isinstance(error, TimeoutError) else "refused"] += 1
            if holder[0] is not None:
                await holder[0].close()
                holder[0] = None
            return None, b""
        self.answers[str(status)] += 1
        return status, answer

    async def run(self, events: list[dict[str, Any]], started: float) -> None:
        """Every event at its slot (`started` + index / rate), retried until accepted."""
        slots = iter(range(len(events)))
        self.started, self.started_wall = started, time.time() - (time.monotonic() - started)

        async def worker() -> None:
            holder: list[HttpConnection | None] = [None]
            try:
                for slot in slots:
                    self.taken = max(self.taken, slot + 1)
                    due = self.started + slot / self.rate
                    if due > time.monotonic():
                        await asyncio.sleep(due - time.monotonic())
                    await self.post(events[slot], holder)
            finally:
                if holder[0] is not None:
                    await holder[0].close()

        await asyncio.gather(*(worker() for _ in range(self.connections)))

    async def post_one(self, event: dict[str, Any], within: float) -> float | None:
        """One event on a connection of its own; the monotonic time of its 202, if any."""
        holder: list[HttpConnection | None] = [None]
        try:
            if await self.post(event, holder, within):
                return self.accepted[event["id"]]
            return None
        finally:
            if holder[0] is not None:
                await holder[0].close()


def progress_line(sender: Sender, total: int, extra: Callable[[], str]) -> str:
    elapsed = time.monotonic() - sender.started
    refused = sum(count for answer, count in sender.answers.items() if answer != "202")
    return (
        f"{elapsed:6.1f}s posted {sender.taken:,}/{total:,}, accepted {len(sender.accepted):,}, "
        f"not accepted at first {refused:,} {extra()}"
    )
