"""Migrations: each service's Alembic history builds the schema its tables.py describes, from
an empty database and from the previous release's database with its rows in it; `leadflow
migrate` gives each service its own schema and history, and can run twice."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from services.router import tables as router_tables
from services.scoring import tables as scoring_tables
from shared.db import SERVICE_SCHEMAS, alembic_config, migrate
from tests.databases import own_database

pytestmark = pytest.mark.integration

SERVICES = sorted(SERVICE_SCHEMAS)
# What each service's code says its schema is.
DESCRIBED: dict[str, MetaData] = {
    "scoring": scoring_tables.metadata,
    "router": router_tables.metadata,
}
# The revision each service's previous release stopped at: the upgrade tests below start there
# with rows in every table. A new revision brings a new case that starts from the one before it.
PREVIOUS_RELEASE = {
    "scoring": "scoring_0005",
    "router": "router_0006",
}

Rows = dict[str, list[dict[str, Any]]]


def _script(service: str) -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config(service, "postgresql+asyncpg:///unused"))


def _head(service: str) -> str:
    head = _script(service).get_current_head()  # raises if the history has branched
    assert head is not None
    return head


@pytest.fixture
async def empty_database(postgres_server: str) -> AsyncIterator[str]:
    """A database of this test's own with nothing in it, dropped at the end."""
    async with own_database(postgres_server, "leadflow_migrations") as url:
        yield url


async def _upgrade(service: str, database_url: str, revision: str = "head") -> None:
    await asyncio.to_thread(command.upgrade, alembic_config(service, database_url), revision)


async def _execute(database_url: str, statements: Iterable[str]) -> None:
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as connection:
            for statement in statements:
                await connection.execute(text(statement))
    finally:
        await engine.dispose()


def _compare(connection: Connection, service: str) -> list[Any]:
    """What Alembic's autogenerate would change to make the service's schema what its
    tables.py describes (types and server defaults included)."""
    schema = SERVICE_SCHEMAS[service]

    def include_name(name: str | None, type_: str, parent_names: Mapping[str, Any]) -> bool:
        if type_ == "schema":
            return name == schema
        return not (type_ == "table" and name == "alembic_version")

    context = MigrationContext.configure(
        connection,
        opts={
            "include_schemas": True,
            "include_name": include_name,
            "compare_type": True,
            "compare_server_default": True,
        },
    )
    return list(compare_metadata(context, DESCRIBED[service]))


async def _differences(database_url: str, service: str) -> list[Any]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_compare, service)
    finally:
        await engine.dispose()


async def _rows(database_url: str, schema: str) -> Rows:
    """Every row of every table of the schema (but Alembic's), as JSON objects, in an order
    that does not depend on how they are stored."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            names = await connection.scalars(
                text(
                    "SELECT table_name FROM information_schema.tables"
                    " WHERE table_schema = :schema AND table_name <> 'alembic_version'"
                ),
                {"schema": schema},
            )
            rows: Rows = {}
            for name in names.all():
                found = await connection.scalars(
                    text(f'SELECT to_jsonb(t)::text FROM "{schema}"."{name}" t')
                )
                rows[name] = _sorted(json.loads(row) for row in found)
            return rows
    finally:
        await engine.dispose()


def _sorted(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda row: json.dumps(row, sort_keys=True))


def _as_upgraded(
    before: Rows,
    dropped: Mapping[str, set[str]],
    added: Mapping[str, Mapping[str, Any]],
) -> Rows:
    """The rows of `before` as they should read after the upgrade: the same values, without
    the columns it drops, with the value each added column gives rows already there."""
    return {
        table: _sorted(
            {
                **{key: value for key, value in row.items() if key not in dropped.get(table, ())},
                **added.get(table, {}),
            }
            for row in rows
        )
        for table, rows in before.items()
    }


async def test_migrate_creates_one_schema_per_service_and_can_run_twice(database_url: str) -> None:
    await asyncio.to_thread(migrate, database_url)
    await asyncio.to_thread(migrate, database_url)

    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            for service, schema in SERVICE_SCHEMAS.items():
                revision = await connection.scalar(
                    text(f'SELECT version_num FROM "{schema}".alembic_version')
                )
                assert revision == _head(service)
    finally:
        await engine.dispose()


@pytest.mark.parametrize("service", SERVICES)
async def test_an_empty_database_migrated_to_head_is_what_tables_py_describes(
    service: str, empty_database: str
) -> None:
    # The comparison looks at this service's schema: in an empty database every table is missing.
    missing = await _differences(empty_database, service)
    assert {diff[1].name for diff in missing if diff[0] == "add_table"} == {
        table.name for table in DESCRIBED[service].tables.values()
    }

    await _upgrade(service, empty_database)

    assert await _differences(empty_database, service) == []


@pytest.mark.parametrize("service", SERVICES)
async def test_every_revision_can_be_undone_and_done_again(
    service: str, empty_database: str
) -> None:
    await _upgrade(service, empty_database)
    await asyncio.to_thread(command.downgrade, alembic_config(service, empty_database), "base")
    assert await _rows(empty_database, SERVICE_SCHEMAS[service]) == {}

    await _upgrade(service, empty_database)

    assert await _differences(empty_database, service) == []


@pytest.mark.parametrize("service", SERVICES)
def test_the_upgrade_with_data_starts_from_the_revision_before_head(service: str) -> None:
    head = _script(service).get_revision(_head(service))
    assert head is not None
    assert head.down_revision == PREVIOUS_RELEASE[service], (
        f"{service} has a new revision: test an upgrade to it from the one before it, with rows"
    )


LEAD = "6f1c2a4e-0b7d-4c39-9a51-2d8e4f6a7b01"
SECOND_LEAD = "6f1c2a4e-0b7d-4c39-9a51-2d8e4f6a7b02"
REP = "0c5d9e3f-8a21-4b6c-b7d4-1e2f3a4b5c60"

# Rows of every scoring table at scoring_0003, as that release wrote them.
SCORING_0003_ROWS = (
    f"""INSERT INTO scoring.interactions
        (event_id, lead_id, event_time, channel, type, campaign, url, asset, network, profile)
        VALUES ('web-1', '{LEAD}', '2026-11-24T10:00:00+00', 'web', 'content_download',
                'spring-webinar', 'https://example.com/guide', 'guide.pdf', NULL,
                '{{"job_title": "CTO", "company_size": 250, "country": "DE"}}')""",
    f"""INSERT INTO scoring.interactions (event_id, lead_id, event_time, channel, type)
        VALUES ('social-1', '{SECOND_LEAD}', '2026-11-24T11:00:00+00', 'social', 'follow')""",
    f"INSERT INTO scoring.identities VALUES ('ada@example.com', '{LEAD}')",
    f"INSERT INTO scoring.identities VALUES ('anon:cookie-7', '{SECOND_LEAD}')",
    f"""INSERT INTO scoring.leads
        (id, email, stage, score, engagement, fit, grade, thresholds_met, campaigns,
         interaction_count, last_event_time, evaluated_at, definitions_version,
         stages_reported, hand_off_blocked_until)
        VALUES ('{LEAD}', 'ada@example.com', 'mql', 42.5, 30, 12.5, 'B', '{{25,40}}',
                '{{spring-webinar}}', 1, '2026-11-24T10:00:00+00', '2026-11-24T10:00:01+00',
                'sha256:3f2a', 2, '2026-12-24T10:00:00+00')""",
    f"INSERT INTO scoring.leads (id) VALUES ('{SECOND_LEAD}')",
    f"""INSERT INTO scoring.returns
        (event_id, lead_id, returned_at, stage, resets_score, eligible_again_at)
        VALUES ('nurture-1', '{LEAD}', '2026-11-24T12:00:00+00', 'nurture', true,
                '2026-12-24T10:00:00+00')""",
    f"INSERT INTO scoring.decay_timers VALUES ('{LEAD}', '2026-12-01T10:00:00+00')",
    """INSERT INTO scoring.consumer_offsets
        (consumer_group, topic, partition, next_offset, log_epoch)
        VALUES ('leadflow-scoring', 'lead.interactions', 2, 17, 'marker-1')""",
    """INSERT INTO scoring.outbox (event_id, topic, key, value, sent_at)
        VALUES ('lifecycle-1', 'lead.lifecycle', convert_to('lead-1', 'UTF8'),
                convert_to('{"id": "lifecycle-1"}', 'UTF8'), '2026-11-24T10:00:02+00')""",
    """INSERT INTO scoring.outbox (event_id, topic, value)
        VALUES ('lifecycle-2', 'lead.lifecycle', convert_to('{"id": "lifecycle-2"}', 'UTF8'))""",
)


async def test_scoring_rows_of_release_0003_survive_the_upgrade(empty_database: str) -> None:
    await _upgrade("scoring", empty_database, "scoring_0003")
    await _execute(empty_database, SCORING_0003_ROWS)
    before = await _rows(empty_database, "scoring")
    assert all(before.values()), "every table holds rows"

    await _upgrade("scoring", empty_database, "scoring_0005")

    # Leads stored before scoring_0004 have no reported stages (NULL, read as "whatever their
    # history showed"); the count it replaced is gone.
    assert await _rows(empty_database, "scoring") == _as_upgraded(
        before,
        dropped={"leads": {"stages_reported"}},
        added={"leads": {"reported_stages": None, "timeline_state": None}},
    )
    new_lead = str(uuid.uuid4())
    await _execute(empty_database, [f"INSERT INTO scoring.leads (id) VALUES ('{new_lead}')"])
    lead = {row["id"]: row for row in (await _rows(empty_database, "scoring"))["leads"]}[new_lead]
    assert lead["reported_stages"] == []
    assert lead["thresholds_met"] == []
    assert lead["score"] == 0


SCORING_0004_ROWS = [
    row.replace("stages_reported", "reported_stages").replace(
        "'sha256:3f2a', 2,", "'sha256:3f2a', '{0:inquiry,0:mql}',"
    )
    for row in SCORING_0003_ROWS
]


async def test_scoring_rows_of_release_0004_survive_the_upgrade(empty_database: str) -> None:
    """Leads stored before scoring_0005 have no timeline state: their next interaction
    replays their history once and saves it."""
    await _upgrade("scoring", empty_database, "scoring_0004")
    await _execute(empty_database, SCORING_0004_ROWS)
    before = await _rows(empty_database, "scoring")
    assert all(before.values()), "every table holds rows"

    await _upgrade("scoring", empty_database, "scoring_0005")

    assert await _rows(empty_database, "scoring") == _as_upgraded(
        before, dropped={}, added={"leads": {"timeline_state": None}}
    )


async def test_scoring_rows_of_the_previous_release_survive_the_upgrade(
    empty_database: str,
) -> None:
    """scoring_0006 adds the shadow runs' tables, empty; every row already there stays."""
    await _upgrade("scoring", empty_database, PREVIOUS_RELEASE["scoring"])
    await _execute(
        empty_database,
        [
            *SCORING_0004_ROWS,
            f"""UPDATE scoring.leads SET timeline_state = '{{"format": 1}}'
                WHERE id = '{LEAD}'""",
        ],
    )
    before = await _rows(empty_database, "scoring")
    assert all(before.values()), "every table holds rows"

    await _upgrade("scoring", empty_database)

    new_tables: Rows = {"shadow_runs": [], "shadow_leads": [], "sales_verdicts": []}
    assert await _rows(empty_database, "scoring") == {**before, **new_tables}


# Rows of every router table at router_0003, as that release wrote them.
ROUTER_0003_ROWS = (
    f"""INSERT INTO router.reps (id, name, team, token_hash, capacity, weight, timezone,
                                 work_start_hour, work_end_hour, work_days, assigned_total,
                                 last_assigned_at)
        VALUES ('{REP}', 'Grace', 'emea', 'sha256:token-of-grace', 20, 2, 'Europe/Berlin', 9,
                17, '{{0,1,2,3,4}}', 1, '2026-11-24T10:05:00+00')""",
    f"""INSERT INTO router.leads (id, status, stage, rep_id, team, grade, score, profile,
                                  account_domain, handed_off_at, assigned_at, accepted_at,
                                  sla_deadline, qualification, definitions_version)
        VALUES ('{LEAD}', 'accepted', 'sal', '{REP}', 'emea', 'A', 81.5,
                '{{"company": "Analytical Engines", "country": "DE"}}', 'example.com',
                '2026-11-24T10:05:00+00', '2026-11-24T10:05:00+00', '2026-11-24T10:30:00+00',
                '2026-11-24T11:05:00+00', '{{"budget": true}}', 'sha256:3f2a')""",
    f"""INSERT INTO router.leads (id, status, team, grade, queued_at)
        VALUES ('{SECOND_LEAD}', 'queued', 'emea', 'C', '2026-11-24T10:06:00+00')""",
    f"INSERT INTO router.account_owners VALUES ('example.com', '{REP}')",
    f"INSERT INTO router.sla_timers VALUES ('{LEAD}', '2026-11-24T11:05:00+00')",
    "INSERT INTO router.processed_events (event_id) VALUES ('lifecycle-1')",
    f"""INSERT INTO router.handoff_log (event_id, lead_id, rep_id, team, kind, envelope)
        VALUES ('handoff-1', '{LEAD}', '{REP}', 'emea', 'assigned',
                '{{"type": "leadflow.handoff.assigned", "subject": "{LEAD}"}}')""",
    f"""INSERT INTO router.sales_actions (event_id, lead_id, rep_id, action, details)
        VALUES ('action-1', '{LEAD}', '{REP}', 'accept', '{{}}')""",
    """INSERT INTO router.consumer_offsets (consumer_group, topic, partition, next_offset)
        VALUES ('leadflow-router', 'lead.lifecycle', 0, 3)""",
    """INSERT INTO router.outbox (event_id, topic, key, value)
        VALUES ('handoff-1', 'lead.handoffs', convert_to('lead-1', 'UTF8'),
                convert_to('{"id": "handoff-1"}', 'UTF8'))""",
    f"""INSERT INTO router.stage_history
        (event_id, lead_id, from_stage, to_stage, occurred_at, grade, reason, campaigns)
        VALUES ('lifecycle-0', '{LEAD}', NULL, 'inquiry', '2026-11-24T10:00:00+00', 'C',
                'first interaction', '{{spring-webinar}}')""",
)


@pytest.mark.parametrize(
    "with_source_channel",
    [
        pytest.param(False, id="router_0003-as-released"),
        # 0f85f61 added source_channel to tables.py without a revision, so databases first
        # migrated after it got the column from router_0003 itself.
        pytest.param(True, id="router_0003-with-source_channel"),
    ],
)
async def test_router_rows_of_release_0003_survive_the_upgrades_to_0005(
    empty_database: str, with_source_channel: bool
) -> None:
    # From router_0003, where these rows were written, through router_0004 and router_0005
    # (router_0006 from router_0005 with rows: test_router_migration_0006.py).
    await _upgrade("router", empty_database, "router_0003")
    if with_source_channel:
        await _execute(
            empty_database, ["ALTER TABLE router.stage_history ADD COLUMN source_channel text"]
        )
    await _execute(empty_database, ROUTER_0003_ROWS)
    if with_source_channel:
        await _execute(empty_database, ["UPDATE router.stage_history SET source_channel = 'web'"])
    before = await _rows(empty_database, "router")
    assert all(before.values()), "every table holds rows"

    await _upgrade("router", empty_database, "router_0005")

    # Stage changes recorded without a source channel keep none (the funnel shows them as
    # unknown); those recorded with one keep it.
    # Reps have no email or chat address and leads no reasons until they are given some.
    added: dict[str, dict[str, Any]] = {
        "reps": {"email": None, "chat_webhook_url": None},
        "leads": {"reasons": []},
    }
    if not with_source_channel:
        added["stage_history"] = {"source_channel": None}
    new_tables: Rows = {"subscriptions": [], "deliveries": [], "delivery_attempts": []}
    assert await _rows(empty_database, "router") == _as_upgraded(before, {}, added) | new_tables
