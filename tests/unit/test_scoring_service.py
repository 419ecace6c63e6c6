"""Scoring's service layer on in-memory fakes: stages, threshold crossings, returns from
sales, cool-off, redelivery and profile updates. No database, no broker."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import ConsumerRecord
from pydantic import BaseModel

from services.scoring.handlers import ScoringService
from shared.consumer import Batch
from shared.definitions import LoadedDefinitions, load_definitions
from shared.events import InteractionRecorded, LeadReturnedToNurture, NurtureRecorded
from shared.topics import INTERACTIONS, INTERACTIONS_DLQ, LIFECYCLE, NURTURE
from tests.fakes.scoring import FakeScoringStore

pytestmark = pytest.mark.unit

LOADED = load_definitions(Path(__file__).resolve().parents[2] / "lead-definitions.yaml")
START = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
EVENT_NUMBERS = itertools.count()
# known enough for mql, no fit points
ACME: dict[str, Any] = {"company": "Acme", "job_title": "Engineer"}


def interaction(
    email: str,
    channel: str,
    kind: str,
    at: datetime,
    *,
    properties: dict[str, str] | None = None,
    **contact: Any,
) -> InteractionRecorded:
    if properties is None:
        properties = {"url": "/pricing"} if kind in ("page_view", "click") else {}
    return InteractionRecorded.model_validate(
        {
            # Interactions at one moment replay in event-id order: ids in sending order keep
            # a test's history the same in every run.
            "id": f"event-{next(EVENT_NUMBERS):06d}",
            "source": "/test",
            "type": f"leadflow.interaction.{channel}.{kind}",
            "time": at,
            "subject": email,
            "data": {
                "channel": channel,
                "type": kind,
                "time": at,
                "contact": {"email": email, **contact},
                "properties": properties,
            },
        }
    )


def record(topic: str, event: BaseModel) -> ConsumerRecord:
    value = event.model_dump_json().encode()
    return ConsumerRecord(topic, 0, 0, 0, 0, None, value, None, 0, len(value), [])


@dataclass
class Scoring:
    """A scoring service on fakes, at a time the test moves on."""

    now: datetime = START
    store: FakeScoringStore = field(default_factory=FakeScoringStore)
    loaded: LoadedDefinitions = LOADED

    def __post_init__(self) -> None:
        self.service = ScoringService(self.store.unit_of_work, self.loaded, now=lambda: self.now)

    async def receive(self, *events: InteractionRecorded | NurtureRecorded) -> None:
        """One batch, as the consumer hands it over."""
        records = [
            record(NURTURE.name if isinstance(e, NurtureRecorded) else INTERACTIONS.name, e)
            for e in events
        ]
        await self.service.handle_interactions(Batch(records, {}, {}))

    async def interact(self, email: str, channel: str, kind: str, **contact: Any) -> None:
        await self.receive(interaction(email, channel, kind, self.now, **contact))

    def lead(self, email: str) -> dict[str, Any]:
        (row,) = (row for row in self.store.data.leads.values() if row.get("email") == email)
        return row

    def lifecycle(self, email: str) -> list[tuple[Any, ...]]:
        """What was published of the lead: stage entries and threshold crossings."""
        lead_id = self.lead(email)["id"]
        facts = []
        for event in self.store.published(LIFECYCLE.name):
            data = event["data"]
            if event["subject"] != lead_id:
                continue
            if data["kind"] == "stage_changed":
                facts.append(("stage", data["from_stage"], data["to_stage"]))
            else:
                facts.append(("threshold", data["threshold"], data["direction"]))
        return facts

    def stage_entries(self, email: str) -> list[dict[str, Any]]:
        """The stage events published of the lead, in order, as JSON."""
        lead_id = self.lead(email)["id"]
        return [
            event["data"]
            for event in self.store.published(LIFECYCLE.name)
            if event["subject"] == lead_id and event["data"]["kind"] == "stage_changed"
        ]

    async def return_to_nurture(
        self, email: str, action: str = "nurture", cool_off: timedelta = timedelta(days=1)
    ) -> None:
        """Sales sends the lead back (on `lead.nurture`), eligible again after `cool_off`."""
        returned = LeadReturnedToNurture(
            lead_id=self.lead(email)["id"],
            reason="bad_timing",
            reason_label="Bad timing",
            action=action,
            stage="nurture",
            rep_id="rep-1",
            track="stay-in-touch",
            returned_at=self.now,
            eligible_again_at=self.now + cool_off,
        )
        await self.receive(
            NurtureRecorded(
                id=str(uuid.uuid4()),
                source="/router",
                type="leadflow.lead.returned_to_nurture",
                time=self.now,
                subject=returned.lead_id,
                data=returned,
            )
        )

    async def hand_off(self, email: str) -> None:
        """Interactions that take a new lead to sql: 15 + 40 + 40 + 30 points."""
        await self.interact(email, "tradeshow", "booth_visit")
        await self.interact(email, "tradeshow", "meeting", **ACME)
        await self.interact(email, "tradeshow", "meeting")
        await self.interact(email, "tradeshow", "demo")


@pytest.fixture
def scoring() -> Scoring:
    return Scoring()


async def test_a_lead_climbs_inquiry_mql_sql_as_the_definitions_say(scoring: Scoring) -> None:
    await scoring.hand_off("ada@example.com")

    assert scoring.lifecycle("ada@example.com") == [
        ("stage", None, "inquiry"),
        ("stage", "inquiry", "mql"),
        ("threshold", 50.0, "up"),
        ("stage", "mql", "sql"),
        ("threshold", 100.0, "up"),
    ]
    lead = scoring.lead("ada@example.com")
    assert (lead["stage"], lead["score"], lead["grade"]) == ("sql", 125.0, "B")
    assert scoring.store.commits == 4
    hand_off = scoring.store.published(LIFECYCLE.name)[-2]["data"]
    assert hand_off["is_hand_off"]
    assert hand_off["profile"]["company"] == "Acme"


async def test_a_hand_off_says_who_the_lead_is_and_which_three_rules_gave_most_points(
    scoring: Scoring,
) -> None:
    await scoring.interact(
        "mia@example.com",
        "web",
        "page_view",
        first_name="Mia",
        last_name="Schmidt",
        company="Acme",
        job_title="VP Sales",
    )
    scoring.now += timedelta(days=30)  # a half-life: the pricing page's 10 points are 5 now
    await scoring.interact("mia@example.com", "web", "demo_request")

    *climb, hand_off = scoring.stage_entries("mia@example.com")
    assert [(entry["to_stage"], entry["top_reasons"]) for entry in climb] == [
        ("inquiry", []),
        ("mql", []),
    ]
    assert hand_off["is_hand_off"]
    profile = hand_off["profile"]
    assert (profile["first_name"], profile["last_name"]) == ("Mia", "Schmidt")
    # The generic page view's half point is the fourth reason: not told.
    assert [tuple(reason.values()) for reason in hand_off["top_reasons"]] == [
        ("demo-request", "Asking for a demo goes straight to sales.", 40),
        ("executive", "executive", 20),
        ("pricing-page", "Looking at prices is buying behaviour.", 5),
    ]


async def test_a_hand_off_after_a_score_reset_gives_only_the_points_since_as_reasons(
    scoring: Scoring,
) -> None:
    await scoring.hand_off("ada@example.com")
    scoring.now += timedelta(hours=1)
    await scoring.return_to_nurture("ada@example.com", action="reset_score")
    scoring.now += timedelta(days=1)  # the cool-off is over

    await scoring.interact("ada@example.com", "tradeshow", "meeting")
    await scoring.interact("ada@example.com", "tradeshow", "meeting")
    await scoring.interact("ada@example.com", "tradeshow", "demo")

    first, again = (e for e in scoring.stage_entries("ada@example.com") if e["is_hand_off"])
    assert [(r["rule"], r["points"]) for r in first["top_reasons"]] == [
        ("booth-meeting", 80),
        ("booth-demo", 30),
        ("booth-visit", 15),
    ]
    assert [(r["rule"], r["points"]) for r in again["top_reasons"]] == [
        ("booth-meeting", 80),
        ("booth-demo", 30),
    ]


async def test_decay_takes_the_score_below_a_threshold_and_the_stage_stays(
    scoring: Scoring,
) -> None:
    await scoring.interact("ada@example.com", "tradeshow", "meeting", **ACME)
    await scoring.interact("ada@example.com", "tradeshow", "booth_visit")  # 55 points: mql

    scoring.now += timedelta(days=1)  # 53.8 points after a day of a 30-day half-life
    assert await scoring.service.handle_due_timers() == 0
    scoring.now += timedelta(days=9)  # 43.7 points
    assert await scoring.service.handle_due_timers() == 1

    assert scoring.lifecycle("ada@example.com")[-2:] == [
        ("threshold", 50.0, "up"),
        ("threshold", 50.0, "down"),
    ]
    lead = scoring.lead("ada@example.com")
    assert lead["score"] < 50
    assert lead["stage"] == "mql"
    assert scoring.store.data.timers == {}  # below every threshold: nothing left to decay


async def test_a_lead_sales_returns_stands_in_nurture_and_climbs_again(
    scoring: Scoring,
) -> None:
    await scoring.hand_off("ada@example.com")
    published = len(scoring.store.published(LIFECYCLE.name))
    scoring.now += timedelta(hours=1)

    await scoring.return_to_nurture("ada@example.com", action="reset_score")

    lead = scoring.lead("ada@example.com")
    assert (lead["stage"], lead["score"]) == ("nurture", 0.0)
    # The return is the router's to report; scoring reports the crossings down it causes.
    assert scoring.lifecycle("ada@example.com")[-2:] == [
        ("threshold", 100.0, "down"),
        ("threshold", 50.0, "down"),
    ]
    assert len(scoring.store.published(LIFECYCLE.name)) == published + 2
    await scoring.interact("ada@example.com", "tradeshow", "meeting")
    await scoring.interact("ada@example.com", "tradeshow", "booth_visit")
    assert scoring.lifecycle("ada@example.com")[-3:] == [
        ("stage", "nurture", "inquiry"),
        ("stage", "inquiry", "mql"),
        ("threshold", 50.0, "up"),
    ]


async def test_a_returned_lead_is_not_handed_off_again_before_its_cool_off_ends(
    scoring: Scoring,
) -> None:
    await scoring.hand_off("ada@example.com")
    scoring.now += timedelta(hours=1)
    await scoring.return_to_nurture("ada@example.com", cool_off=timedelta(days=2))

    scoring.now += timedelta(hours=1)
    await scoring.interact("ada@example.com", "tradeshow", "demo")  # still over 100 points
    assert scoring.lead("ada@example.com")["stage"] == "mql"
    assert ("stage", "mql", "sql") not in scoring.lifecycle("ada@example.com")[5:]

    scoring.now += timedelta(days=2)
    assert await scoring.service.handle_due_timers() == 1
    assert scoring.lifecycle("ada@example.com")[-1] == ("stage", "mql", "sql")
    assert scoring.lead("ada@example.com")["stage"] == "sql"


async def test_a_redelivered_interaction_counts_once(scoring: Scoring) -> None:
    meeting = interaction("ada@example.com", "tradeshow", "meeting", START, **ACME)
    await scoring.receive(meeting)
    published = scoring.store.published(LIFECYCLE.name)

    await scoring.receive(meeting)
    await scoring.receive(meeting, meeting)

    lead = scoring.lead("ada@example.com")
    assert (lead["interaction_count"], lead["score"]) == (1, 40.0)
    assert scoring.store.published(LIFECYCLE.name) == published
    assert len(scoring.store.data.positions) == 3  # every batch's offsets are stored


async def test_a_profile_update_completes_what_a_stage_asks_for(scoring: Scoring) -> None:
    await scoring.interact("ada@example.com", "tradeshow", "meeting")
    await scoring.interact("ada@example.com", "tradeshow", "booth_visit")
    assert scoring.lead("ada@example.com")["stage"] == "inquiry"  # 55 points, company unknown

    await scoring.interact(
        "ada@example.com", "email", "profile_update", company="Acme", country="DE"
    )

    assert scoring.lifecycle("ada@example.com")[-2:] == [
        ("threshold", 50.0, "up"),
        ("stage", "inquiry", "mql"),
    ]
    mql = scoring.store.published(LIFECYCLE.name)[-1]["data"]
    assert (mql["profile"]["company"], mql["profile"]["country"]) == ("Acme", "DE")
    assert scoring.lead("ada@example.com")["score"] == 60.0  # the core market's fit points


async def test_an_interaction_the_database_cannot_store_goes_to_the_dead_letters(
    scoring: Scoring,
) -> None:
    """A NUL in a name (PostgreSQL text cannot hold one) from a sender before the contract
    refused it: that record is dead-lettered with the reason, the rest of its batch scored."""
    good = interaction("ada@example.com", "tradeshow", "meeting", START, **ACME)
    bad = interaction("bob@example.com", "tradeshow", "meeting", START, last_name="Nul")
    poisoned = bad.model_dump_json().replace('"Nul"', '"N\\u0000ul"').encode()
    records = [
        record(INTERACTIONS.name, good),
        ConsumerRecord(INTERACTIONS.name, 0, 1, 0, 0, None, poisoned, None, 0, len(poisoned), []),
    ]
    await scoring.service.handle_interactions(Batch(records, {}, {}))

    assert scoring.lead("ada@example.com")["score"] == 40.0
    [dead] = scoring.store.published(INTERACTIONS_DLQ.name)
    assert dead["data"]["offset"] == 1
    assert "contact.last_name" in dead["data"]["error"]


async def test_decay_takes_a_named_score_below_its_threshold_on_time() -> None:
    examples = LOADED.source.parent / "examples" / "definitions"
    scoring = Scoring(loaded=load_definitions(examples / "product-lines.yaml"))
    pricing = {"url": "https://acme.test/analytics/pricing"}
    for _ in range(2):  # 2 x (5 + 15) = 40 analytics points
        await scoring.receive(
            interaction(
                "ada@example.com", "web", "page_view", scoring.now, properties=pricing, **ACME
            )
        )

    scoring.now += timedelta(days=8)  # 21-day half-life: 40 decays to about 30.8
    assert await scoring.service.handle_due_timers() == 0
    scoring.now += timedelta(days=1)  # about 29.8
    assert await scoring.service.handle_due_timers() == 1

    lead_id = scoring.lead("ada@example.com")["id"]
    crossings = [
        (data["score_key"], data["threshold"], data["direction"])
        for data in (event["data"] for event in scoring.store.published(LIFECYCLE.name))
        if data["lead_id"] == lead_id and data["kind"] == "threshold_crossed"
    ]
    assert crossings[-2:] == [("analytics", 30.0, "up"), ("analytics", 30.0, "down")]
