"""One demo run: send the people's interactions, hire reps, work the hand-offs."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import MISSING, asdict, dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

from leadflow.demo.mail import MailCount
from leadflow.demo.people import (
    BADGE_COLUMNS,
    REPS,
    SHOW,
    Person,
    interactions_of,
    rep_email,
    synthetic_people,
    table_rows,
)

STREAM_TIMEOUT = httpx.Timeout(10.0, read=None)  # the hand-off stream waits for news
REASONS = ("no_budget", "bad_timing", "not_decision_maker", "not_ready", "bad_data", "competitor")
SUMMARY = """\
{people} people sent {interactions_sent} interactions over web, email, tradeshow and social \
({interactions_refused} refused)
{reps_created} reps hired; {handoffs} leads handed to sales, {queued} of them queued for lack of \
capacity, {assigned_from_queue} assigned once a rep had room
reps saw {leads_seen} leads: {accepted} accepted, {rejected} sent back to nurture ({reasons}), \
{converted} converted, {won} won, {lost} lost
look at: the live hand-offs {router}/v1/handoffs/stream (admin key) · \
`leadflow tail lead.handoffs` · `leadflow tail lead.nurture` · \
GET {scoring}/v1/leads?stage=sql with the admin key
{mail}"""


class DemoError(RuntimeError):
    """The stack cannot be reached or refused a key: the demo cannot go on."""


@dataclass(frozen=True)
class DemoSummary:
    """What one demo run did: counted by the demo, hand-offs as seen on the router's stream."""

    people: int
    interactions_sent: int
    interactions_refused: int
    reps_created: int
    handoffs: int
    queued: int
    assigned_from_queue: int
    leads_seen: int
    accepted: int
    rejected: int
    converted: int
    won: int
    lost: int
    notifications: int | None = None  # reaching the local mailbox; None: there is none


def _decision(lead: dict[str, Any], people: dict[str, Person], seed: int) -> tuple[str, str]:
    """What the rep does with a lead: ("reject", reason), or work it to "won", "lost", "keep"."""
    rng = random.Random(f"{seed}:{lead.get('email') or lead['id']}")
    person = people.get(lead.get("email") or "")
    title = str(person.known["job_title"]).lower() if person else ""
    if "student" in title or "intern" in title:
        return "reject", "student"
    if rng.random() < 0.25:
        junior = not any(word in title for word in ("chief", "vp", "head", "director", "manager"))
        return "reject", ("not_decision_maker" if junior else rng.choice(REASONS))
    return rng.choices(("won", "lost", "keep"), weights=(45, 30, 25))[0], ""


def _next_step(lead: dict[str, Any], decision: tuple[str, str], rng: random.Random) -> Any:
    """The rep's next step on a lead as (what it counts as, action, body); None: keep it."""
    (outcome, reason), amount = decision, rng.randrange(8, 120) * 1000
    if lead["status"] == "assigned" and outcome == "reject":
        return "rejected", "reject", {"reason": reason, "note": "demo: back to marketing"}
    if lead["status"] == "assigned":
        return "accepted", "accept", {}
    if outcome != "keep" and lead["stage"] == "sal":
        timeframe = rng.choice(("this quarter", "next quarter", "within 6 months"))
        return "converted", "convert", {"budget": f"{amount // 1000}k EUR", "timeframe": timeframe}
    if outcome != "keep" and lead["stage"] == "opportunity":
        return outcome, "close", {"outcome": outcome, "amount": amount if outcome == "won" else 0}
    return None


def _problem(response: httpx.Response) -> str:
    try:
        body = response.json()
        first = (body.get("errors") or [{}])[0]
    except (ValueError, AttributeError):
        return response.text[:200]
    return f"{body.get('detail', '')} {first.get('field', '')} {first.get('message', '')}".strip()


@dataclass
class _Demo:
    """One run: the stack and its keys, the people, the clock, and everything counted."""

    client: httpx.AsyncClient
    echo: Callable[[str], None]
    ingest_url: str
    router_url: str
    api_key: str
    admin: dict[str, str]
    seed: int
    deadline: float
    people: dict[str, Person]
    counts: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    problems: Counter[str] = field(default_factory=Counter)
    leads: defaultdict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def report(self, problem: str) -> None:
        """Say a problem the first time it happens; count it every time."""
        if not self.problems[problem]:
            self.echo(f"! {problem}")
        self.problems[problem] += 1

    async def call(self, what: str, method: str, url: str, **kwargs: Any) -> httpx.Response | None:
        """The answer. 429/503 and lost connections are retried with backoff; other errors
        are reported and answer None; a refused key (401) or no stack at all ends the demo."""
        loop = asyncio.get_running_loop()
        for attempt in range(8):
            try:
                response = await self.client.request(method, url, **kwargs)
            except httpx.TransportError as error:
                if attempt >= 3:
                    raise DemoError(f"cannot reach {url}: is `leadflow up` running?") from error
                delay = 0.5 * 2**attempt
            else:
                if response.status_code == 401:
                    raise DemoError(f"{what}: {url} refused the key (401)")
                if response.status_code not in (429, 503):
                    if response.is_error:
                        self.report(f"{what}: {response.status_code} {_problem(response)}")
                        return None
                    return response
                retry_after = response.headers.get("retry-after", "")
                delay = float(retry_after) if retry_after.isdigit() else 0.5 * 2**attempt
            if loop.time() + delay > self.deadline + 30:
                break
            await asyncio.sleep(min(delay, 10.0))
        self.report(f"{what}: gave up after retries (the service is busy or down)")
        return None

    async def hire_reps(self, tag: str) -> list[tuple[str, str]]:
        """This run's reps as (id, token); earlier demo reps, whose tokens are gone, retire."""
        reps_url = f"{self.router_url}/v1/reps"
        roster = await self.call("read the roster", "GET", reps_url, headers=self.admin)
        existing = {rep["name"]: rep for rep in (roster.json() if roster else [])}
        hired = []
        for name, team, capacity, zone in table_rows(REPS):
            if f"{name} (demo {tag})" in existing:
                continue  # made by an earlier run with this tag; its token is not shown again
            body = {"name": f"{name} (demo {tag})", "team": team, "capacity": int(capacity)}
            body |= {"timezone": zone, "work_start_hour": 0, "work_end_hour": 24}
            body |= {"email": rep_email(name)}
            rep = await self.call("add a rep", "POST", reps_url, headers=self.admin, json=body)
            hired += [(rep.json()["id"], rep.json()["token"])] if rep else []
        for old in existing.values():  # their open leads are reassigned, to this run's reps
            if " (demo " in old["name"] and old["active"]:
                url = f"{reps_url}/{old['id']}"
                await self.call("retire an earlier demo rep", "DELETE", url, headers=self.admin)
        return hired

    async def send(self, batches: list[Any], scans: list[Any], until: float, bar: Progress) -> None:
        """The batches spread evenly until `until`, the tradeshow file in the middle."""
        loop, headers = asyncio.get_running_loop(), {"X-API-Key": self.api_key}
        task = bar.task_ids[0]
        started, gap = loop.time(), max(until - loop.time(), 0) / (len(batches) + 1)
        for index, batch in enumerate(batches):
            if loop.time() > self.deadline:
                self.report(f"time is up: {len(batches) - index} batches were not sent")
                return
            if index == len(batches) // 2 and scans:
                await self.import_badge_scans(scans, headers)
                bar.advance(task, len(scans))
            url, body = f"{self.ingest_url}/v1/events/batch", {"events": batch}
            answer = await self.call("send interactions", "POST", url, headers=headers, json=body)
            refused: list[Any] = [{"status": 0}] * len(batch)
            for result in answer.json()["results"] if answer else refused:
                accepted = result["status"] == 202
                self.counts["interactions_sent" if accepted else "interactions_refused"] += 1
                for error in result.get("errors") or []:
                    self.report(f"ingest refused: {error['field']} {error['message']}")
            bar.advance(task, len(batch))
            await asyncio.sleep(max(0.0, started + gap * (index + 1) - loop.time()))

    async def import_badge_scans(self, scans: list[Any], headers: dict[str, str]) -> None:
        """Upload the show's scanner export as a CSV file."""
        file = io.StringIO()
        writer = csv.DictWriter(file, BADGE_COLUMNS.split(), restval="", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(scans)
        url, query = f"{self.ingest_url}/v1/imports/tradeshow", {"campaign": SHOW}
        headers = headers | {"Content-Type": "text/csv"}
        body = file.getvalue()
        answer = await self.call("import", "POST", url, params=query, headers=headers, content=body)
        report: dict[str, Any] = (
            answer.json() if answer else {"accepted": 0, "rejected": len(scans)}
        )
        self.counts["interactions_sent"] += report["accepted"]
        self.counts["interactions_refused"] += report["rejected"]
        for row in report.get("rejected_rows", []):
            self.report(f"ingest refused a badge scan: {row}")

    async def work_queue(self, rep_id: str, token: str) -> None:
        """A rep until the deadline: look at the queue, take one step on each lead, pause."""
        loop, pace = asyncio.get_running_loop(), random.Random(rep_id)
        auth = {"Authorization": f"Bearer {token}"}
        queue_url = f"{self.router_url}/v1/reps/{rep_id}/queue"
        while loop.time() < self.deadline:
            queue = await self.call("read a rep's queue", "GET", queue_url, headers=auth)
            for lead in queue.json() if queue and loop.time() < self.deadline else []:
                self.leads["leads_seen"].add(lead["id"])
                step = _next_step(lead, _decision(lead, self.people, self.seed), pace)
                if step is not None:
                    counted, action, body = step
                    url = f"{self.router_url}/v1/leads/{lead['id']}/{action}"
                    answer = await self.call(action, "POST", url, headers=auth, json=body)
                    self.counts[counted] += answer is not None
                    if answer is not None and action == "reject":
                        self.reasons[body["reason"]] += 1
                await asyncio.sleep(pace.uniform(0.1, 0.4))
            await asyncio.sleep(pace.uniform(0.8, 2.0))

    async def watch_handoffs(self, since: datetime) -> None:
        """Count this run's hand-offs on the router's stream (which replays from the start)."""
        url, kind = f"{self.router_url}/v1/handoffs/stream", ""
        try:
            stream = self.client.stream("GET", url, headers=self.admin, timeout=STREAM_TIMEOUT)
            async with stream as answer:
                async for line in answer.aiter_lines():
                    kind = line.removeprefix("event: ") if line.startswith("event: ") else kind
                    if not line.startswith("data: ") or kind not in ("assigned", "queued"):
                        continue
                    envelope = json.loads(line.removeprefix("data: "))
                    lead_id = envelope["data"]["lead_id"]
                    if datetime.fromisoformat(envelope["time"]) < since:
                        continue
                    self.leads["handoffs"].add(lead_id)
                    if kind == "queued":
                        self.leads["queued"].add(lead_id)
                    elif lead_id in self.leads["queued"]:
                        self.leads["assigned_from_queue"].add(lead_id)
        except httpx.HTTPError as error:
            self.report(f"the hand-off stream ended: {error!r}")


async def run_demo(
    ingest_url: str,
    router_url: str,
    api_key: str,
    admin_key: str,
    *,
    minutes: float = 1.0,
    seed: int = 7,
    echo: Callable[[str], None],
    scoring_url: str | None = None,
    run_tag: str | None = None,
    mailbox_url: str | None = None,
) -> DemoSummary:
    """Run the demo for `minutes` against a running stack and answer what happened.

    Hires eight reps (admin key), sends ~200 people's interactions over web, email, social
    and a tradeshow file (API key) during the first 40% of the time, and works the reps'
    queues until the end, counting the notifications that reach the local mailbox at
    `mailbox_url` (`leadflow up`'s) meanwhile. Raises DemoError when the stack is
    unreachable or refuses a key; other refusals are reported through `echo` and the demo
    goes on.
    """
    loop, since = asyncio.get_running_loop(), datetime.now(UTC) - timedelta(seconds=1)
    tag = run_tag or format(int(time.time()), "x")[-5:]
    people, rng = synthetic_people(seed, tag), random.Random(seed)
    journeys = [interactions_of(person, rng, datetime.now(UTC)) for person in people]
    events = [event for person_events, _ in journeys for event in person_events]
    rng.shuffle(events)
    for index, event in enumerate(events):  # our own ids: a retried batch is recorded once
        event["id"] = f"demo:{tag}:{index}"
    scans = [row for _, person_scans in journeys for row in person_scans]
    size = max(10, -(-len(events) // 20))
    batches = [events[i : i + size] for i in range(0, len(events), size)]
    seconds = minutes * 60
    admin = {"Authorization": f"Bearer {admin_key}"}
    async with httpx.AsyncClient(timeout=httpx.Timeout(10.0)) as client:
        by_email = {person.known["email"]: person for person in people}
        deadline = loop.time() + seconds
        demo = _Demo(client, echo, ingest_url, router_url, api_key, admin, seed, deadline, by_email)
        hired = await demo.hire_reps(tag)
        mail = MailCount(client, mailbox_url, demo.report)
        counting_mail = await mail.start()
        columns = ("{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        try:
            with Progress(*columns, console=Console(stderr=True)) as bar:
                bar.add_task("interactions sent", total=sum(map(len, batches)) + len(scans))
                working = bar.add_task("reps working (s)", total=round(seconds))
                async with asyncio.TaskGroup() as group:
                    watchers = [group.create_task(demo.watch_handoffs(since))]
                    if counting_mail:
                        mailed = bar.add_task("notifications in the mailbox", total=None)
                        watchers.append(group.create_task(mail.watch(bar, mailed)))
                    group.create_task(demo.send(batches, scans, loop.time() + 0.4 * seconds, bar))
                    for rep_id, token in hired:
                        group.create_task(demo.work_queue(rep_id, token))
                    while loop.time() < demo.deadline:
                        bar.update(working, completed=seconds - (demo.deadline - loop.time()))
                        await asyncio.sleep(0.25)
                    bar.update(working, completed=seconds)
                    await asyncio.sleep(1.0)  # the stream catches up with the last actions
                    for watcher in watchers:
                        watcher.cancel()
        except* DemoError as failures:
            raise failures.exceptions[0] from None
        if counting_mail:
            await mail.update()
    counts = {"people": len(people), "reps_created": len(hired), **demo.counts}
    counts |= {name: len(ids) for name, ids in demo.leads.items()}
    summary = DemoSummary(
        **{f.name: counts.get(f.name, 0) for f in fields(DemoSummary) if f.default is MISSING},
        notifications=mail.received,
    )
    reasons = ", ".join(f"{reason} {n}" for reason, n in demo.reasons.most_common()) or "none"
    scoring = scoring_url or "<scoring>"
    echo(
        SUMMARY.format(
            **asdict(summary),
            reasons=reasons,
            router=router_url,
            scoring=scoring,
            mail=mail.line(),
        )
    )
    return summary
