"""Mautic's contact changes as scoring sees them (a module of its own: a broker of its own,
so no other test's interactions of the same person are on the topic)."""

from __future__ import annotations

import pytest

from shared.settings import Settings
from tests.integration.test_scoring import lead_by_email
from tests.integration.test_webhooks import FIXTURES, SECRET, post
from tests.stacks import ingest_and_scoring

pytestmark = pytest.mark.integration


async def test_mautic_contact_changes_give_the_lead_its_profile_and_no_points(
    settings: Settings, database_url: str
) -> None:
    configured = settings.model_copy(
        update={"database_url": database_url, "webhook_secrets": {"mautic": SECRET}}
    )
    async with ingest_and_scoring(configured) as (ingest, scoring):
        for name in ("lead_post_save_new.json", "lead_company_change.json"):
            body = (FIXTURES / "mautic" / name).read_bytes()
            assert (await post(ingest, "mautic", body)).status_code == 202
        lead = await lead_by_email(scoring, "ben.carter@example.com", interaction_count=2)
    assert lead["engagement"] == 0
    assert lead["breakdown"]["behaviour"] == []
    assert lead["fit"] > 0  # a CTO in a core market: the profile Mautic sent counts
