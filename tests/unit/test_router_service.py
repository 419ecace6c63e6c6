"""The router's service layer on in-memory fakes: assignment, the queue, follow-up and every
rep action, allowed and refused. No database, no broker."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import ConsumerRecord

from services.router.actions import SalesDesk
from services.router.assigner import Assigner
from services.router.domain import (
    ActionNotAllowed,
    Lead,
    LeadNotFound,
    LeadStatus,
    MissingRequirements,
    NotYourLead,
    RepNotFound,
    UnknownReason,
    UnknownTeam,
)
from services.router.domain.notices import Audience
from services.router.handlers import RouterService
from shared.consumer import Batch
from shared.definitions import load_definitions
from shared.events import LeadProfile
from shared.topics import HANDOFFS, LIFECYCLE, NURTURE, SALES_ACTIONS
from tests.fakes.router import FakeRouterStore, hand_off_event

pytestmark = pytest.mark.unit

LOADED = load_definitions(Path(__file__).resolve().parents[2] / "lead-definitions.yaml")
MONDAY_NOON = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@dataclass
class Clock:
    now: datetime = MONDAY_NOON

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Router:
    """A router on fakes, with a clock the test moves."""

    clock: Clock = field(default_factory=Clock)
    store: FakeRouterStore = field(default_factory=FakeRouterStore)

    def __post_init__(self) -> None:
        assigner = Assigner(LOADED, self.clock)
        self.service = RouterService(self.store.unit_of_work, assigner)
        self.desk = SalesDesk(self.store.unit_of_work, assigner)

    async def rep(self, name: str, team: str = "dach", capacity: int = 5) -> str:
        rep_id, _ = await self.desk.create_rep({"name": name, "team": team, "capacity": capacity})
        return rep_id

    async def hand_off(
        self,
        email: str,
        *,
        country: str = "DE",
        company_size: int | None = None,
        event_id: str | None = None,
        lead_id: str | None = None,
    ) -> str:
        """Scoring hands a lead over (grade A: accept within an hour)."""
        lead_id = lead_id or str(uuid.uuid4())
        profile = LeadProfile(email=email, country=country, company_size=company_size)
        event = hand_off_event(lead_id, profile, self.clock(), event_id)
        value = event.model_dump_json().encode()
        record = ConsumerRecord(LIFECYCLE.name, 0, 0, 0, 0, None, value, None, 0, len(value), [])
        await self.service.handle_lifecycle(Batch([record], {}, {}))
        return lead_id

    def lead(self, lead_id: str) -> Lead:
        return self.store.data.leads[lead_id]

    def kinds(self, lead_id: str) -> list[str]:
        return self.store.handoff_kinds(lead_id)


@pytest.fixture
def router() -> Router:
    return Router()


# -- assignment ---------------------------------------------------------------------------


async def test_a_lead_goes_to_a_rep_of_the_team_whose_territory_holds_it(router: Router) -> None:
    dach, emea = await router.rep("Dora"), await router.rep("Emil", team="emea")
    big = await router.rep("Enzo", team="enterprise")
    berlin = await router.hand_off("ada@berlin.de")
    london = await router.hand_off("bob@london.co.uk", country="GB")
    huge = await router.hand_off("cio@huge.de", company_size=5000)
    assert [router.lead(lead).rep_id for lead in (berlin, london, huge)] == [dach, emea, big]
    assert router.lead(berlin).status == LeadStatus.ASSIGNED
    assert router.store.data.timers[berlin] == MONDAY_NOON + timedelta(hours=1)
    [assigned] = router.store.published(HANDOFFS.name)[:1]
    assert (assigned["data"]["kind"], assigned["data"]["rep_id"]) == ("assigned", dach)


async def test_round_robin_takes_turns_and_the_account_owner_comes_first(router: Router) -> None:
    first, second = await router.rep("First"), await router.rep("Second")
    one = await router.hand_off("one@alpha.de")
    two = await router.hand_off("two@beta.de")
    assert {router.lead(one).rep_id, router.lead(two).rep_id} == {first, second}
    again = await router.hand_off("three@alpha.de")  # alpha.de's account is the first one's
    assert router.lead(again).rep_id == router.lead(one).rep_id


async def test_a_hand_off_repeated_routes_the_lead_once(router: Router) -> None:
    await router.rep("Dora")
    event_id, lead_id = str(uuid.uuid4()), str(uuid.uuid4())
    await router.hand_off("ada@berlin.de", event_id=event_id, lead_id=lead_id)
    await router.hand_off("ada@berlin.de", event_id=event_id, lead_id=lead_id)
    await router.hand_off("ada@berlin.de", lead_id=lead_id)  # another hand-off, still with sales
    assert router.kinds(lead_id) == ["assigned"]


# -- the queue ----------------------------------------------------------------------------


async def test_a_lead_nobody_can_take_is_queued_once_and_drained_when_a_place_frees(
    router: Router,
) -> None:
    solo = await router.rep("Solo", capacity=1)
    first = await router.hand_off("first@one.de")
    second = await router.hand_off("second@two.de")
    assert router.lead(second).status == LeadStatus.QUEUED
    assert await router.service.drain_queue() == 0
    assert await router.service.drain_queue() == 0
    assert router.kinds(second) == ["queued"]

    await router.desk.act(solo, first, "accept", {})
    await router.desk.act(solo, first, "lost", {})
    assert router.lead(second).rep_id == solo
    assert router.kinds(second) == ["queued", "assigned"]


async def test_a_drain_reaches_a_team_with_room_behind_the_waiting_leads_of_a_full_team(
    router: Router,
) -> None:
    await router.rep("Full", capacity=0)
    emea = await router.rep("Emil", team="emea", capacity=0)
    for number in range(3):
        await router.hand_off(f"buyer@berlin{number}.de")
    london = await router.hand_off("bob@london.co.uk", country="GB")
    assert router.lead(london).status == LeadStatus.QUEUED
    router.store.data.reps[emea]["capacity"] = 1  # as another router's roster change left it
    assert await router.service.drain_queue(limit=2) == 1
    assert router.lead(london).rep_id == emea


async def test_a_queued_lead_goes_to_its_accounts_owner_in_another_team_once_they_have_room(
    router: Router,
) -> None:
    await router.rep("Full", capacity=0)
    owner = await router.rep("Emil", team="emea", capacity=1)
    london = await router.hand_off("bob@acme.de", country="GB")  # Emil owns acme.de now
    berlin = await router.hand_off("ada@acme.de")
    assert router.lead(berlin).status == LeadStatus.QUEUED
    await router.desk.act(owner, london, "reject", {"reason": "no_budget"})
    assert router.lead(berlin).rep_id == owner


async def test_one_batch_gives_round_robin_turns_in_order_at_one_moment(router: Router) -> None:
    reps = [await router.rep(name, capacity=10) for name in ("A", "B", "C")]
    leads = []
    for number in range(6):
        lead_id = str(uuid.uuid4())
        profile = LeadProfile(email=f"buyer@company{number}.de", country="DE")
        value = hand_off_event(lead_id, profile, router.clock()).model_dump_json().encode()
        leads.append((lead_id, value))
    records = [
        ConsumerRecord(LIFECYCLE.name, 0, n, 0, 0, None, value, None, 0, len(value), [])
        for n, (_, value) in enumerate(leads)
    ]
    await router.service.handle_lifecycle(Batch(records, {}, {}))
    got = [router.lead(lead_id).rep_id for lead_id, _ in leads]
    assert got[:3] == got[3:]
    assert set(got) == set(reps)


async def test_a_new_rep_takes_the_queue_and_a_leaving_reps_leads_move_on(router: Router) -> None:
    waiting = await router.hand_off("wait@ing.de")
    assert router.lead(waiting).status == LeadStatus.QUEUED
    leaving = await router.rep("Leaving")
    assert router.lead(waiting).rep_id == leaving
    staying = await router.rep("Staying")
    await router.desk.update_rep(leaving, {"active": False})
    assert router.lead(waiting).rep_id == staying
    assert router.kinds(waiting) == ["queued", "assigned", "reassigned"]
    assert router.store.data.handoffs[-1].data.previous_rep_id == leaving


# -- follow-up ----------------------------------------------------------------------------


async def test_a_missed_sla_reassigns_then_the_last_allowed_miss_escalates(router: Router) -> None:
    reps = {await router.rep("First"), await router.rep("Second")}
    lead = await router.hand_off("slow@zurich.ch", country="CH")
    missed_by = router.lead(lead).rep_id
    assert await router.service.handle_due_slas() == 0  # not due yet
    router.clock.now += timedelta(hours=1)
    assert await router.service.handle_due_slas() == 1
    assert router.lead(lead).rep_id == (reps - {missed_by}).pop()
    router.clock.now += timedelta(hours=1)
    assert await router.service.handle_due_slas() == 1
    assert await router.service.handle_due_slas() == 0  # escalated: no timer is left
    assert router.kinds(lead) == ["assigned", "reassigned", "escalated"]
    escalated = router.store.data.handoffs[-1].data
    assert (escalated.escalated_to, router.lead(lead).breaches) == ("dach-lead", 2)


async def test_each_routing_event_plans_its_notices_once_in_its_own_transaction() -> None:
    router = Router()
    router.service.assigner.audience = Audience(email=True, team_chat={"dach": "https://chat/d"})
    first, second = await router.rep("First"), await router.rep("Second")
    lead = await router.hand_off("told@zurich.ch", country="CH")
    handed_to = router.lead(lead).rep_id
    router.clock.now += timedelta(hours=1)
    await router.service.handle_due_slas()
    router.clock.now += timedelta(hours=1)
    await router.service.handle_due_slas()
    await router.hand_off("told@zurich.ch", country="CH", lead_id=lead)  # a repeat changes nothing

    planned = [
        (n.purpose, n.channel, n.rep_id or n.address)
        for n in router.store.data.notices.values()
        if n.lead_id == lead
    ]
    other = ({first, second} - {handed_to}).pop()
    assert planned == [
        ("assigned", "email", handed_to),
        ("assigned", "chat", handed_to),
        ("reminder", "email", handed_to),
        ("reminder", "chat", handed_to),
        ("assigned", "chat", "https://chat/d"),
        ("reassigned", "email", other),
        ("reassigned", "chat", other),
        ("reminder", "email", other),
        ("reminder", "chat", other),
        ("reassigned", "chat", "https://chat/d"),
        ("escalated", "email", "dach-lead@example.com"),
        ("escalated", "chat", "https://chat/d"),
    ]


async def test_an_accepted_lead_has_no_follow_up(router: Router) -> None:
    rep = await router.rep("Quick")
    lead = await router.hand_off("fast@firm.de")
    await router.desk.act(rep, lead, "accept", {})
    router.clock.now += timedelta(days=1)
    assert await router.service.handle_due_slas() == 0
    assert router.kinds(lead) == ["assigned", "accepted"]


# -- rep actions --------------------------------------------------------------------------


async def worked_lead(router: Router) -> tuple[str, str]:
    rep = await router.rep("Ada")
    return rep, await router.hand_off("buyer@acme.de")


async def test_accept_qualify_convert_and_win(router: Router) -> None:
    rep, lead = await worked_lead(router)
    assert await router.desk.act(rep, lead, "accept", {}) == "sal"
    assert router.lead(lead).status == LeadStatus.ACCEPTED
    assert lead not in router.store.data.timers
    assert await router.desk.act(rep, lead, "qualify", {"budget": "50k"}) == "sal"
    assert await router.desk.act(rep, lead, "convert", {"timeframe": "Q1", "budget": "50k"}) == (
        "opportunity"
    )
    assert await router.desk.act(rep, lead, "won", {"amount": 48000.0}) == "won"
    closed = router.lead(lead)
    assert (closed.status, closed.amount) == (LeadStatus.CLOSED, 48000.0)
    assert closed.qualification == {"budget": "50k", "timeframe": "Q1", "amount": 48000.0}
    facts = [e["data"]["action"] for e in router.store.published(SALES_ACTIONS.name)]
    assert facts == ["accept", "qualify", "convert", "won"]
    stages = [e["data"]["to_stage"] for e in router.store.published(LIFECYCLE.name)]
    assert stages == ["sal", "sal", "opportunity", "won"]


async def test_lost_closes_the_lead(router: Router) -> None:
    rep, lead = await worked_lead(router)
    await router.desk.act(rep, lead, "accept", {})
    assert await router.desk.act(rep, lead, "lost", {}) == "lost"
    assert router.lead(lead).status == LeadStatus.CLOSED


@pytest.mark.parametrize(
    ("reason", "stage", "cool_off"),
    [("no_budget", "nurture", timedelta(days=90)), ("student", "disqualified", None)],
)
async def test_reject_returns_the_lead_to_marketing_with_its_reason(
    router: Router, reason: str, stage: str, cool_off: timedelta | None
) -> None:
    rep, lead = await worked_lead(router)
    assert await router.desk.act(rep, lead, "reject", {"reason": reason}) == stage
    assert router.lead(lead).status == LeadStatus.RETURNED
    assert lead not in router.store.data.timers
    [returned] = router.store.published(NURTURE.name)
    eligible = returned["data"]["eligible_again_at"]
    expected = None if cool_off is None else (MONDAY_NOON + cool_off).isoformat()
    assert (returned["data"]["reason"], returned["data"]["rep_id"]) == (reason, rep)
    assert (eligible.replace("Z", "+00:00") if eligible else None) == expected


@pytest.mark.parametrize(
    ("action", "details", "refused"),
    [
        ("convert", {}, ActionNotAllowed),  # not accepted yet
        ("won", {}, ActionNotAllowed),
        ("reject", {"reason": "dunno"}, UnknownReason),
    ],
)
async def test_an_action_the_lead_does_not_allow_changes_nothing(
    router: Router, action: Any, details: dict[str, Any], refused: type[Exception]
) -> None:
    rep, lead = await worked_lead(router)
    before, commits = router.lead(lead), router.store.commits
    with pytest.raises(refused) as raised:
        await router.desk.act(rep, lead, action, details)
    if isinstance(raised.value, ActionNotAllowed):
        assert raised.value.allowed == ["accept", "reject"]
    assert (router.lead(lead), router.store.commits) == (before, commits)
    assert router.store.published(SALES_ACTIONS.name) == []


async def test_convert_needs_the_stage_requirements(router: Router) -> None:
    rep, lead = await worked_lead(router)
    await router.desk.act(rep, lead, "accept", {})
    with pytest.raises(MissingRequirements) as missing:
        await router.desk.act(rep, lead, "convert", {"budget": "50k"})
    assert missing.value.fields == ["timeframe"]
    assert router.lead(lead).stage == "sal"


async def test_only_the_leads_rep_acts_on_a_lead_that_exists(router: Router) -> None:
    _, lead = await worked_lead(router)
    other = await router.rep("Other", team="emea")
    with pytest.raises(NotYourLead):
        await router.desk.act(other, lead, "accept", {})
    with pytest.raises(LeadNotFound):
        await router.desk.act(other, str(uuid.uuid4()), "accept", {})
    assert router.lead(lead).status == LeadStatus.ASSIGNED


async def test_the_roster_refuses_unknown_reps_and_teams(router: Router) -> None:
    with pytest.raises(RepNotFound):
        await router.desk.update_rep(str(uuid.uuid4()), {"capacity": 3})
    with pytest.raises(UnknownTeam) as unknown:
        await router.desk.create_rep({"name": "X", "team": "mars"})
    assert "dach" in unknown.value.known
    assert router.store.data.reps == {}
