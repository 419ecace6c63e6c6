"""A shadow run on live traffic, against the real broker and PostgreSQL: what its report says
the candidate would decide is what a what-if replay of the same interactions finds."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from services.scoring.domain import ScoringModel
from services.scoring.replay import FunnelProjection
from services.scoring.repository import SqlInteractions
from shared.definitions.loader import parse_definitions
from shared.settings import Settings
from tests.stacks import ingest_and_scoring
from tests.unit.test_shadow import CANDIDATE_TEXT, DEFAULT_TEXT

pytestmark = pytest.mark.integration

LEADS = 30
# Enough leads on distinct keys that every partition holds one: once all are scored, the
# consumer has gone through whatever the topics held before this test.
MARKERS = 24


def _interactions(email: str, number: int, at: datetime) -> list[dict[str, Any]]:
    """Leads of several kinds: some handed off by both sides, some by the candidate alone,
    some by neither."""
    contact = {
        "email": email,
        "company": f"Company {number}",
        "country": ("DE", "US", "GB")[number % 3],
    }
    if number % 5 == 0:
        contact["job_title"] = "VP Sales"
    pricing = {"url": "https://acme.test/pricing"}
    kinds: list[tuple[str, str, dict[str, str]]] = [("web", "form_submit", {})] * (number % 3) + [
        ("web", "page_view", pricing)
    ] * (number % 4)
    if number % 7 == 0:
        kinds.append(("web", "demo_request", {}))
    return [
        {
            "channel": channel,
            "type": kind,
            "time": (at + timedelta(seconds=offset)).isoformat(),
            "contact": contact,
            "properties": properties,
        }
        for offset, (channel, kind, properties) in enumerate(kinds or [("email", "open", {})])
    ]


async def _scored(scoring: httpx.AsyncClient, expected: dict[str, int]) -> dict[str, str]:
    """Wait until each lead (by email) has scored its interactions; answer their ids."""
    found: dict[str, str] = {}
    for _ in range(300):
        for email, count in expected.items():
            if email in found:
                continue
            items = (await scoring.get("/v1/leads", params={"email": email})).json()["items"]
            if items:
                detail = (await scoring.get(f"/v1/leads/{items[0]['id']}")).json()
                if detail["interaction_count"] == count:
                    found[email] = detail["id"]
        if len(found) == len(expected):
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"{len(expected) - len(found)} leads were never scored")


async def _what_if(
    database_url: str, lead_ids: list[str], document: str, as_of: float
) -> dict[str, tuple[bool, str]]:
    """Each lead as `leadflow whatif` replays it: handed off?, grade."""
    model = ScoringModel(parse_definitions(document, Path("what-if")).definitions)
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            histories = await SqlInteractions(connection).histories(lead_ids)
    finally:
        await engine.dispose()
    replayed = {}
    for lead_id in lead_ids:
        projection = FunnelProjection()
        projection.add(model, histories[lead_id], as_of)
        (grade,) = projection.by_grade
        replayed[lead_id] = (bool(projection.hand_offs_by_week), grade)
    return replayed


async def test_a_shadow_run_reports_what_a_what_if_replay_finds_and_is_promoted(
    settings: Settings, database_url: str, tmp_path: Path
) -> None:
    definitions_file = tmp_path / "lead-definitions.yaml"
    definitions_file.write_text(DEFAULT_TEXT)
    configured = settings.model_copy(
        update={"database_url": database_url, "definitions_path": definitions_file}
    )
    tag = uuid.uuid4().hex[:8]
    now = datetime.now(UTC).replace(microsecond=0)
    async with ingest_and_scoring(configured) as (ingest, scoring):
        markers = {f"marker-{tag}-{n}@example.com": 1 for n in range(MARKERS)}
        for email in markers:
            event = {
                "channel": "email",
                "type": "open",
                "time": now.isoformat(),
                "contact": {"email": email},
            }
            assert (await ingest.post("/v1/events", json=event)).status_code == 202
        await _scored(scoring, markers)

        assert (await scoring.get("/v1/definitions/shadow")).status_code == 404
        invalid = await scoring.post(
            "/v1/definitions/shadow",
            json={"document": DEFAULT_TEXT.replace("half_life_days: 30", "half_life_days: x")},
        )
        assert invalid.status_code == 422
        assert invalid.json()["errors"][0]["field"] == "document.scoring.decay.half_life_days"
        started = await scoring.post(
            "/v1/definitions/shadow", json={"document": CANDIDATE_TEXT, "label": "at 40"}
        )
        assert started.status_code == 201, started.text
        run = started.json()
        again = await scoring.post("/v1/definitions/shadow", json={"document": CANDIDATE_TEXT})
        assert again.status_code == 409

        sent = {}
        for number in range(LEADS):
            email = f"lead-{tag}-{number}@example.com"
            events = _interactions(email, number, now)
            for event in events:
                assert (await ingest.post("/v1/events", json=event)).status_code == 202
            sent[email] = len(events)
        lead_ids = list((await _scored(scoring, sent)).values())

        report = (await scoring.get("/v1/definitions/shadow/report")).json()
        as_of = datetime.now(UTC).timestamp()
        candidate = await _what_if(database_url, lead_ids, CANDIDATE_TEXT, as_of)
        active = await _what_if(database_url, lead_ids, DEFAULT_TEXT, as_of)
        by_candidate = {lead for lead, (handed_off, _) in candidate.items() if handed_off}
        by_active = {lead for lead, (handed_off, _) in active.items() if handed_off}
        assert report["leads"] == LEADS
        assert report["handed_off"] == {
            "candidate_only": {
                "count": len(by_candidate - by_active),
                "lead_ids": sorted(by_candidate - by_active),
            },
            "active_only": {
                "count": len(by_active - by_candidate),
                "lead_ids": sorted(by_active - by_candidate),
            },
            "both": len(by_active & by_candidate),
            "neither": LEADS - len(by_active | by_candidate),
        }
        assert by_candidate - by_active, "the candidate hands off leads the active one does not"
        shifts = Counter((active[lead][1], candidate[lead][1]) for lead in lead_ids)
        assert {
            (row["active_grade"], row["candidate_grade"]): row["leads"]
            for row in report["grade_shift"]
        } == shifts

        stopped = await scoring.post("/v1/definitions/shadow/stop")
        assert stopped.status_code == 200
        assert (await scoring.post("/v1/definitions/shadow/stop")).status_code == 409
        kept = (
            await scoring.get("/v1/definitions/shadow/report", params={"run": run["id"]})
        ).json()
        assert kept["run"]["stopped_at"] is not None
        assert {key: kept[key] for key in ("leads", "handed_off", "grade_shift")} == {
            key: report[key] for key in ("leads", "handed_off", "grade_shift")
        }

        promoted = await scoring.post("/v1/definitions/shadow/promote")
        assert promoted.status_code == 200, promoted.text
        previous_version = run["active_version"]
        assert definitions_file.read_text() == CANDIDATE_TEXT
        assert (tmp_path / f"lead-definitions.{previous_version}.yaml").read_text() == DEFAULT_TEXT
        assert (await scoring.get("/v1/definitions")).json()["version"] == run["version"]
        history = (await scoring.get("/v1/definitions/shadow/history")).json()
        assert [(past["id"], past["promoted_at"] is not None) for past in history] == [
            (run["id"], True)
        ]

        late = f"late-{tag}@example.com"
        event = {
            "channel": "email",
            "type": "open",
            "time": now.isoformat(),
            "contact": {"email": late},
        }
        assert (await ingest.post("/v1/events", json=event)).status_code == 202
        (late_id,) = (await _scored(scoring, {late: 1})).values()
        detail = (await scoring.get(f"/v1/leads/{late_id}")).json()
        assert detail["definitions_version"] == run["version"]
