"""Follow-up over time, with definitions whose clocks run in seconds instead of hours."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.settings import Settings
from shared.topics import LIFECYCLE, NURTURE
from tests.integration.test_router import (
    demo_request,
    handoff_kinds,
    new_rep,
    queue_of,
    router_service,
)
from tests.kafka_reader import ReadRecord, read_until
from tests.stacks import ADMIN, served_stack

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def quick_definitions(directory: Path, *, sla_minutes: float, cool_off_days: float) -> Path:
    text = (ROOT / "lead-definitions.yaml").read_text()
    for grade, minutes in (("A", 60), ("B", 240), ("C", 1440)):
        text = text.replace(
            f"{grade}: {{accept_within_minutes: {minutes}}}",
            f"{grade}: {{accept_within_minutes: {sla_minutes}}}",
        )
    text = text.replace(
        "track: budget-next-year, cool_off_days: 90",
        f"track: budget-next-year, cool_off_days: {cool_off_days}",
    )
    path = directory / "quick.yaml"
    path.write_text(text)
    return path


@pytest.fixture
async def quick_settings(
    settings: Settings, database_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Settings:
    sla, cool_off = request.param
    return settings.model_copy(
        update={
            "database_url": database_url,
            "definitions_path": quick_definitions(
                tmp_path, sla_minutes=sla, cool_off_days=cool_off
            ),
        }
    )


@pytest.mark.parametrize("quick_settings", [(0.025, 90)], indirect=True)
async def test_sla_breach_reassigns_then_escalates_once_with_two_routers(
    quick_settings: Settings,
) -> None:
    async with served_stack(quick_settings, routers=2) as stack:
        ingest, router = stack.ingest, stack.router
        first, first_token = await new_rep(router, "First", capacity=5)
        second, second_token = await new_rep(router, "Second", capacity=5)
        await demo_request(ingest, "slow@zurich-bank.ch", country="CH")
        kinds: list[str] = []
        lead_id = None
        for _ in range(100):
            queues = [
                await router.get(f"/v1/reps/{rep}/queue", headers=ADMIN) for rep in (first, second)
            ]
            leads = [lead for queue in queues for lead in queue.json()]
            if leads:
                lead_id = leads[0]["id"]
                kinds = await handoff_kinds(quick_settings.require_database(), lead_id)
                if "escalated" in kinds:
                    break
            await asyncio.sleep(0.2)
        assert lead_id is not None
        # A third router, a day later: it waits for the others' routing transactions, and
        # finds no follow-up left to handle.
        tomorrow = datetime.now(UTC) + timedelta(days=1)
        async with router_service(quick_settings, clock=lambda: tomorrow) as third:
            assert await third.handle_due_slas() == 0
        kinds = await handoff_kinds(quick_settings.require_database(), lead_id)
        assert kinds == ["assigned", "reassigned", "escalated"]
        assert first_token != second_token


@pytest.mark.parametrize("quick_settings", [(60, 0.00005)], indirect=True)
async def test_reject_nurture_cool_off_then_hand_off_again(quick_settings: Settings) -> None:
    async with served_stack(quick_settings) as stack:
        ingest, router = stack.ingest, stack.router
        rep, token = await new_rep(router, "Nora", capacity=5)
        await demo_request(ingest, "later@vienna-tech.at", country="AT")
        [lead] = await queue_of(router, rep, token, 1)
        assert (
            await router.post(f"/v1/leads/{lead['id']}/accept", headers=token)
        ).status_code == 200
        rejected = await router.post(
            f"/v1/leads/{lead['id']}/reject", json={"reason": "no_budget"}, headers=token
        )
        assert rejected.json()["stage"] == "nurture"
        unknown = await router.post(
            f"/v1/leads/{lead['id']}/reject", json={"reason": "dunno"}, headers=token
        )
        assert unknown.status_code in (409, 422)

        nurture = await read_until(
            quick_settings.require_broker(),
            NURTURE.name,
            lambda rs: any(r.value.get("subject") == lead["id"] for r in rs),
        )
        returned = next(r.value["data"] for r in nurture if r.value.get("subject") == lead["id"])
        assert (returned["reason"], returned["rep_id"], returned["track"]) == (
            "no_budget",
            rep,
            "budget-next-year",
        )
        assert returned["eligible_again_at"] is not None

        # Interest right away is not a hand-off: the cool-off holds it back ...
        meeting = {
            "channel": "tradeshow",
            "type": "meeting",
            "contact": {"email": "later@vienna-tech.at"},
        }
        for _ in range(2):  # 40 + 2 x 40 + 5 fit: past the 100 points of the hand-off
            assert (await ingest.post("/v1/events", json=meeting)).status_code == 202

        def of_lead(records: list[ReadRecord]) -> list[dict[str, object]]:
            return [r.value["data"] for r in records if r.key == lead["id"]]

        def past_hand_off(records: list[ReadRecord]) -> bool:
            return any(
                change["kind"] == "threshold_crossed"
                and change["threshold"] == 100
                and change["direction"] == "up"
                for change in of_lead(records)
            )

        # Scoring saw the score pass the hand-off's 100 points, and did not hand it off.
        lifecycle = await read_until(quick_settings.require_broker(), LIFECYCLE.name, past_hand_off)
        hand_offs = [change for change in of_lead(lifecycle) if change.get("is_hand_off")]
        assert len(hand_offs) == 1  # the first, before the return
        assert await queue_of(router, rep, token, 0) == []
        # ... and once it ends, the lead goes to sales again.
        [again] = await queue_of(router, rep, token, 1)
        assert again["id"] == lead["id"]
        kinds = await handoff_kinds(quick_settings.require_database(), lead["id"])
        assert kinds == ["assigned", "accepted", "assigned"]


@pytest.mark.parametrize("quick_settings", [(60, 90)], indirect=True)
async def test_a_deactivated_reps_leads_are_reassigned(quick_settings: Settings) -> None:
    async with served_stack(quick_settings) as stack:
        ingest, router = stack.ingest, stack.router
        leaving, leaving_token = await new_rep(router, "Leaving", team="americas", capacity=5)
        await demo_request(ingest, "buyer@boston-labs.com", country="US")
        [lead] = await queue_of(router, leaving, leaving_token, 1)
        staying, staying_token = await new_rep(router, "Staying", team="americas", capacity=5)
        gone = await router.delete(f"/v1/reps/{leaving}", headers=ADMIN)
        assert gone.json()["active"] is False
        [moved] = await queue_of(router, staying, staying_token, 1)
        assert moved["id"] == lead["id"]
