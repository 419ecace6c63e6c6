"""`leadflow demo` against the three services: hand-offs, queues and nurture returns happen,
and the reps' notifications reach a local mailbox."""

from __future__ import annotations

import re

import httpx
import pytest

from leadflow.demo import REASONS, run_demo
from leadflow.demo.people import REPS, rep_email, table_rows
from leadflow.mailbox import running_mailbox
from services.ingest.bootstrap import create_app as create_ingest
from services.router.bootstrap import create_app as create_router
from services.scoring.bootstrap import create_app as create_scoring
from shared.settings import Settings
from tests.conftest import TEST_ADMIN_KEY
from tests.kafka_reader import ReadRecord, read_until
from tests.serving import served

pytestmark = pytest.mark.e2e

ADMIN = {"Authorization": f"Bearer {TEST_ADMIN_KEY}"}


async def test_the_demo_shows_hand_offs_queues_and_nurture_returns(
    settings: Settings, database_url: str
) -> None:
    lines: list[str] = []
    async with running_mailbox() as mailbox:
        configured = settings.model_copy(
            update={"database_url": database_url, "smtp_url": mailbox.smtp_url}
        )
        async with (
            served(create_ingest(configured)) as ingest_url,
            served(create_scoring(configured)) as scoring_url,
            served(create_router(configured)) as router_url,
        ):
            summary = await run_demo(
                ingest_url,
                router_url,
                "all-channels-key",
                TEST_ADMIN_KEY,
                minutes=0.2,
                seed=7,
                echo=lines.append,
                scoring_url=scoring_url,
                run_tag="t1",
                mailbox_url=mailbox.url,
            )
            async with httpx.AsyncClient(base_url=router_url) as router:
                roster = (await router.get("/v1/reps", headers=ADMIN)).json()

    refused = [line for line in lines if re.match(r"! .*: [45]\d\d ", line)]
    assert not refused, lines  # every request the demo makes is one the services accept
    assert summary.people == 200
    assert summary.interactions_sent > 900
    assert summary.interactions_refused == 0
    assert summary.reps_created == 8
    assert {rep["team"] for rep in roster} == {"enterprise", "dach", "emea", "americas"}
    assert summary.handoffs > 0
    assert summary.leads_seen > 0
    assert summary.queued > 0  # small capacities: some leads wait...
    assert summary.assigned_from_queue > 0  # ...until a reject or a close frees a place
    assert summary.accepted > 0
    assert summary.rejected > 0
    assert "sent back to nurture" in "\n".join(lines)
    # The reps were told by email, at their demo addresses; the demo says how often.
    assert summary.notifications is not None
    assert 0 < summary.notifications <= mailbox.mailbox.total  # the router may send more after
    assert f"{summary.notifications} notifications reached the local mailbox" in lines[-1]
    reps_mailed = {to for message in mailbox.mailbox.kept for to in message.recipients}
    assert reps_mailed <= {rep_email(name) for name, *_ in table_rows(REPS)}

    def returns(records: list[ReadRecord]) -> list[ReadRecord]:
        return [r for r in records if r.value["type"] == "leadflow.nurture.returned"]

    nurture = returns(
        await read_until(
            configured.require_broker(),
            "lead.nurture",
            lambda records: len(returns(records)) >= summary.rejected,
        )
    )
    assert len(nurture) == summary.rejected
    assert {record.value["data"]["reason"] for record in nurture} <= set(REASONS) | {"student"}
