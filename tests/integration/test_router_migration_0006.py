"""router_0006 on a database router_0005 wrote: every rep's open-lead counter starts at the
leads they really hold, the rotation goes on in the order reps last got a lead, and every
other row survives unchanged."""

from __future__ import annotations

import pytest

from tests.integration.test_migrations import (
    LEAD,
    REP,
    ROUTER_0003_ROWS,
    _as_upgraded,
    _execute,
    _rows,
    _upgrade,
    empty_database,  # noqa: F401 - the fixture this module's test takes
)

pytestmark = pytest.mark.integration

BUSY_REP = "0c5d9e3f-8a21-4b6c-b7d4-1e2f3a4b5c61"
NEW_REP = "0c5d9e3f-8a21-4b6c-b7d4-1e2f3a4b5c62"
SUBSCRIPTION = "9a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d"


def _lead(number: int, status: str, rep: str | None) -> str:
    rep_id = f"'{rep}'" if rep else "NULL"
    return f"""INSERT INTO router.leads (id, status, rep_id, team, grade, reasons)
        VALUES ('6f1c2a4e-0b7d-4c39-9a51-2d8e4f6a7c{number:02d}', '{status}', {rep_id}, 'dach',
                'B', '[{{"rule": "demo", "label": "Demo request", "points": 50}}]')"""


# Rows of every router table at router_0005, as that release wrote them: Grace (emea) holds
# one accepted lead; the busy rep (dach) two assigned and one accepted, and one closed and
# one returned that no longer count; the new rep (dach) never got a lead.
ROUTER_0005_ROWS = (
    *ROUTER_0003_ROWS,
    f"""INSERT INTO router.reps (id, name, team, token_hash, capacity, assigned_total,
                                 last_assigned_at, email, chat_webhook_url)
        VALUES ('{BUSY_REP}', 'Ada', 'dach', 'sha256:token-of-ada', 5, 5,
                '2026-11-24T09:00:00+00', 'ada@example.com', NULL)""",
    f"""INSERT INTO router.reps (id, name, team, token_hash, capacity)
        VALUES ('{NEW_REP}', 'Linus', 'dach', 'sha256:token-of-linus', 5)""",
    _lead(1, "assigned", BUSY_REP),
    _lead(2, "assigned", BUSY_REP),
    _lead(3, "accepted", BUSY_REP),
    _lead(4, "closed", BUSY_REP),
    _lead(5, "returned", BUSY_REP),
    f"""INSERT INTO router.subscriptions (id, url, event_types, secret)
        VALUES ('{SUBSCRIPTION}', 'https://crm.example.com/hooks', '{{leadflow.handoff.assigned}}',
                'whsec_c2VjcmV0')""",
    f"""INSERT INTO router.deliveries (dedupe_key, event_id, lead_id, channel, subscription_id,
                                       recipient, purpose, rep_id, body, due_at)
        VALUES ('webhook/{SUBSCRIPTION}/handoff-1', 'handoff-1', '{LEAD}', 'webhook',
                '{SUBSCRIPTION}', 'https://crm.example.com/hooks', 'leadflow.handoff.assigned',
                '{REP}', '{{}}', '2026-11-24T10:05:00+00')""",
    """INSERT INTO router.delivery_attempts (delivery_id, number, at, status_code, latency_ms)
        SELECT id, 1, '2026-11-24T10:05:01+00', 503, 12.5 FROM router.deliveries""",
)


async def test_counters_and_turns_are_filled_from_the_rows_router_0005_wrote(
    empty_database: str,  # noqa: F811 - the fixture imported above
) -> None:
    await _upgrade("router", empty_database, "router_0005")
    await _execute(empty_database, ROUTER_0005_ROWS)
    before = await _rows(empty_database, "router")
    assert all(before.values()), "every table holds rows"

    await _upgrade("router", empty_database, "router_0006")

    after = await _rows(empty_database, "router")
    reps = {row["id"]: row for row in after["reps"]}
    assert {rep_id: rep["open_leads"] for rep_id, rep in reps.items()} == {
        REP: 1,
        BUSY_REP: 3,
        NEW_REP: 0,
    }
    # Ada got a lead before Grace did; Linus never did, so his turn comes first.
    assert [reps[rep_id]["last_turn"] for rep_id in (BUSY_REP, REP, NEW_REP)] == [1, 2, None]
    assert after["team_rotations"] == [{"team": "dach"}, {"team": "emea"}]
    kept = {table: rows for table, rows in after.items() if table != "team_rotations"}
    kept |= _as_upgraded({"reps": after["reps"]}, {"reps": {"open_leads", "last_turn"}}, {})
    assert kept == _as_upgraded(before, {"reps": {"last_assigned_at"}}, {})


async def test_the_counters_follow_every_lead_that_moves_after_the_upgrade(
    empty_database: str,  # noqa: F811 - the fixture imported above
) -> None:
    await _upgrade("router", empty_database, "router_0005")
    await _execute(empty_database, ROUTER_0005_ROWS)
    await _upgrade("router", empty_database)

    lead = "6f1c2a4e-0b7d-4c39-9a51-2d8e4f6a7c01"
    await _execute(
        empty_database,
        [
            f"UPDATE router.leads SET status = 'accepted' WHERE id = '{lead}'",  # still open
            f"UPDATE router.leads SET rep_id = '{NEW_REP}' WHERE id = '{lead}'",  # reassigned
            "UPDATE router.leads SET status = 'closed'"  # Grace's lead is won
            " WHERE id = '6f1c2a4e-0b7d-4c39-9a51-2d8e4f6a7b01'",
            _lead(6, "assigned", NEW_REP),
            "DELETE FROM router.leads WHERE id = '6f1c2a4e-0b7d-4c39-9a51-2d8e4f6a7c02'",
        ],
    )
    reps = {row["id"]: row for row in (await _rows(empty_database, "router"))["reps"]}
    assert {rep_id: rep["open_leads"] for rep_id, rep in reps.items()} == {
        REP: 0,
        BUSY_REP: 1,
        NEW_REP: 2,
    }
