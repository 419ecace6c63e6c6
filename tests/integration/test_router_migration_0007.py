"""router_0007 on a database router_0006 holds: every lead routed before has no named scores,
and every other row survives unchanged."""

from __future__ import annotations

import pytest

from tests.integration.test_migrations import (
    _as_upgraded,
    _execute,
    _rows,
    _upgrade,
    empty_database,  # noqa: F401 - the fixture this module's test takes
)
from tests.integration.test_router_migration_0006 import ROUTER_0005_ROWS

pytestmark = pytest.mark.integration


async def test_leads_routed_before_router_0007_have_no_named_scores(
    empty_database: str,  # noqa: F811 - the fixture imported above
) -> None:
    await _upgrade("router", empty_database, "router_0005")
    await _execute(empty_database, ROUTER_0005_ROWS)
    await _upgrade("router", empty_database, "router_0006")
    before = await _rows(empty_database, "router")
    assert before["leads"], "there are leads"

    await _upgrade("router", empty_database, "router_0007")

    after = await _rows(empty_database, "router")
    assert after == _as_upgraded(before, {}, {"leads": {"scores": {}}})
