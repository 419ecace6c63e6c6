"""Rescore and what-if over stored history: as if the new definitions had always been live."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from functools import partial
from itertools import pairwise
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine
from typer.testing import CliRunner

from leadflow.cli import app
from services.scoring.domain import ScoringModel, evaluate
from services.scoring.handlers import ScoringService
from services.scoring.replay import SLICES, FunnelProjection, project_funnels, rescore_all
from services.scoring.repository import SqlInteractions
from services.scoring.tables import interactions, leads, outbox
from services.scoring.unit_of_work import unit_of_work
from shared.db import migrate
from shared.definitions import load_definitions
from shared.events import CHANNEL_TYPES
from shared.settings import Settings
from tests.databases import own_database
from tests.integration.test_scoring import lead_by_email
from tests.stacks import ingest_and_scoring

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ACTIVE = ROOT / "lead-definitions.yaml"


@pytest.fixture(scope="module")
def candidate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default definitions with the hand-off at 60 points instead of 100."""
    path = tmp_path_factory.mktemp("defs") / "candidate.yaml"
    path.write_text(
        ACTIVE.read_text().replace("entry: {score: 100, grade: B,", "entry: {score: 60, grade: B,")
    )
    return path


@pytest.fixture(scope="module")
async def history(settings: Settings, database_url: str) -> Settings:
    """Ten leads with 63 to 75 points each, scored under the active definitions."""
    configured = settings.model_copy(update={"database_url": database_url})
    recent = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    async with ingest_and_scoring(configured) as (ingest, scoring):
        for n in range(10):
            contact = {"email": f"r{n}@example.com", "company": "Acme", "job_title": "VP Sales"}
            for kind in ("meeting",):
                event = {"channel": "tradeshow", "type": kind, "time": recent, "contact": contact}
                assert (await ingest.post("/v1/events", json=event)).status_code == 202
            for click in range(n + 1):
                event = {
                    "channel": "email",
                    "type": "click",
                    "time": recent,
                    "contact": {"email": f"r{n}@example.com"},
                    "properties": {"url": f"/{click}"},
                }
                assert (await ingest.post("/v1/events", json=event)).status_code == 202
        for n in range(10):
            await lead_by_email(scoring, f"r{n}@example.com", stage="mql", interaction_count=n + 2)
    return configured


async def test_whatif_projects_without_changing_anything(
    history: Settings, candidate: Path
) -> None:
    engine = create_async_engine(history.require_database())
    try:
        definitions = [load_definitions(p).definitions for p in (ACTIVE, candidate)]
        replayed: list[int] = []
        active, projected = await asyncio.to_thread(
            project_funnels,
            history.require_database(),
            definitions,
            datetime.now(UTC).timestamp(),
            replayed.append,
        )
        assert sum(replayed) == sum(range(2, 12))
        async with engine.connect() as connection:
            stages = list(await connection.scalars(select(leads.c.stage)))
    finally:
        await engine.dispose()
    assert active.by_stage == {"mql": 10}
    assert projected.by_stage == {"sql": 10}
    assert sum(projected.hand_offs_by_week.values()) == 10
    assert stages == ["mql"] * 10

    result = await asyncio.to_thread(
        CliRunner().invoke,
        app,
        ["whatif", str(candidate)],
        env={"DATABASE_URL": history.require_database()},
    )
    assert result.exit_code == 0, result.output
    assert "Leads per stage" in result.output
    assert "nothing was changed" in result.output
    assert "Load per rep" in result.output


KINDS = [(channel, kind) for channel, kinds in CHANNEL_TYPES.items() for kind in kinds]
CAMPAIGNS = [None, None, "newsletter", "q4-webinar", "websummit-2026", "demo-request"]


def _varied_interactions(seed: int = 13) -> list[dict[str, object]]:
    """300 leads spread over the whole id space, 1 to 12 interactions each: several at one
    moment (event ids that sort apart under a locale's collation), some dated after the
    replay's moment, profiles on some, every channel and a campaign entering at the hand-off.
    """
    generate = random.Random(seed)
    start = datetime.now(UTC) - timedelta(days=120)
    rows: list[dict[str, object]] = []
    for lead in range(300):
        lead_id = str(uuid.UUID(int=generate.getrandbits(128), version=4))
        for _ in range(generate.randint(1, 12)):
            channel, kind = generate.choice(KINDS)
            profile = {
                "email": f"v{lead}@example.com",
                "company": generate.choice(["Acme", ""]),
                "job_title": generate.choice(["CTO", "VP Sales", "Student", "Manager", None]),
                "industry": generate.choice(["software", "retail", None]),
                "company_size": generate.choice([5, 300, 2000, None]),
                "country": generate.choice(["DE", "GB", "US", "BR", None]),
            }
            rows.append(
                {
                    "event_id": f"{generate.choice(['a', 'B', 'b-', '_c', 'Z'])}{len(rows)}",
                    "lead_id": lead_id,
                    "event_time": start + timedelta(days=generate.randrange(0, 125, 5)),
                    "channel": channel,
                    "type": kind,
                    "campaign": generate.choice(CAMPAIGNS),
                    "url": generate.choice(["/pricing", "/blog/scoring", None]),
                    "asset": generate.choice(["guide.pdf", None]),
                    "network": generate.choice(["linkedin", None]),
                    "profile": json.dumps(profile) if generate.random() < 0.4 else None,
                }
            )
    return rows


@pytest.fixture(scope="module")
async def varied_history(postgres_server: str) -> AsyncIterator[str]:
    """A database of its own holding `_varied_interactions`, stored as scoring stores them."""
    async with own_database(postgres_server, "leadflow_test_whatif") as url:
        await asyncio.to_thread(migrate, url)
        engine = create_async_engine(url)
        try:
            async with engine.begin() as connection:
                await SqlInteractions(connection).add(_varied_interactions())
        finally:
            await engine.dispose()
        yield url


async def test_whatif_projects_what_replaying_each_lead_alone_gives(
    varied_history: str, candidate: Path
) -> None:
    definitions = [load_definitions(p).definitions for p in (ACTIVE, candidate)]
    as_of = datetime.now(UTC).timestamp()
    replayed: list[int] = []
    projected = await asyncio.to_thread(
        project_funnels, varied_history, definitions, as_of, replayed.append, workers=3
    )

    engine = create_async_engine(varied_history)
    try:
        async with engine.connect() as connection:
            lead_ids = list(await connection.scalars(select(interactions.c.lead_id).distinct()))
            histories = await SqlInteractions(connection).histories(lead_ids)
    finally:
        await engine.dispose()
    one_by_one = [FunnelProjection() for _ in definitions]
    for definition, projection in zip(definitions, one_by_one, strict=True):
        model = ScoringModel(definition)
        for history in histories.values():
            projection.add(model, history, as_of)

    assert projected == one_by_one
    assert sum(replayed) == sum(len(history) for history in histories.values())
    assert projected[1].leads == 300
    assert sum(projected[1].hand_offs_by_week.values()) > 0


def test_slices_cover_every_lead_id_once() -> None:
    assert SLICES[0][0] == "00000000-0000-0000-0000-000000000000"
    assert SLICES[-1][1] == "ffffffff-ffff-ffff-ffff-ffffffffffff"
    for (_, end), (start, _) in pairwise(SLICES):
        assert uuid.UUID(start).int == uuid.UUID(end).int + 1


async def test_rescore_gives_what_the_new_definitions_would_have_given_all_along(
    history: Settings, candidate: Path
) -> None:
    engine = create_async_engine(history.require_database())
    try:
        service = ScoringService(partial(unit_of_work, engine), load_definitions(candidate))
        progressed: list[int] = []
        emitted = await rescore_all(service, progressed.append, chunk=4)
        assert sum(progressed) == 10
        assert emitted == 10 * 2  # mql -> sql and the 60-point threshold, for each lead
        again = await rescore_all(service, lambda _: None)
        assert again == 0  # an interrupted or repeated rescore has nothing left to emit

        async with engine.connect() as connection:
            rows = {r.id: r for r in await connection.execute(select(leads))}
            histories = await SqlInteractions(connection).histories(rows)
            queued = list(await connection.scalars(select(outbox.c.value)))
        for lead_id, row in rows.items():
            fresh = evaluate(service.model, histories[lead_id], datetime.now(UTC).timestamp())
            assert (row.stage, row.grade) == (fresh.stage, fresh.grade)
            assert row.definitions_version == service.loaded.version
        assert sum(b'"to_stage":"sql"' in value for value in queued) == 10
    finally:
        await engine.dispose()
