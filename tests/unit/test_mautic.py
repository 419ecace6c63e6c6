"""Mautic 5 webhooks, from the payloads Mautic really posts (tests/fixtures/mautic)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from services.ingest.auth import check_signature
from services.ingest.domain import Rejected, parse_interaction
from services.ingest.mautic import MAUTIC_SIGNATURE, mautic_delivery
from services.ingest.sources import Delivery
from services.scoring.domain import ScoringModel, StoredInteraction, evaluate
from shared.definitions import load_definitions
from shared.definitions.model import RuleMatch
from shared.events import Interaction
from shared.problems import ProblemError

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "mautic"
SECRET = "leadflow-fixture-secret"  # the secret the fixtures' README signs with


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_bytes())


def delivered(payload: Any) -> Delivery:
    return mautic_delivery(payload)


def interactions(payload: Any) -> list[Interaction]:
    """Every item mapped and valid, in body order."""
    valid = []
    for item in delivered(payload).items:
        assert item.raw is not None, (item.label, item.errors)
        parsed = parse_interaction(item.raw)
        assert not isinstance(parsed, Rejected), (item.label, parsed)
        valid.append(parsed)
    return valid


def only(payload: Any) -> Interaction:
    [interaction] = interactions(payload)
    return interaction


@pytest.mark.parametrize(
    ("name", "signature"),
    [
        ("form_on_submit.json", "6+4oFLc4DBqS2Gb2jw08GYvCDBfwxn3zERWxAr/Fx9Y="),
        ("test_payload.json", "2qUYzYZWTPVzNgJ8281qhax9pNHYIrthnLCgQ48GBFk="),
    ],
)
def test_the_known_answer_signatures_of_the_fixtures_verify(name: str, signature: str) -> None:
    body = (FIXTURES / name).read_bytes()
    headers = {"Webhook-Signature": signature}
    assert check_signature(MAUTIC_SIGNATURE, SECRET, body, headers) is None
    with pytest.raises(ProblemError) as caught:
        check_signature(MAUTIC_SIGNATURE, SECRET, body + b" ", headers)
    assert caught.value.status == 401


def test_a_form_submission_is_a_web_form_submit_with_the_contact_and_its_company_size() -> None:
    submitted = only(fixture("form_on_submit.json"))
    assert submitted.channel_type == ("web", "form_submit")
    assert submitted.id == "mautic:form_on_submit:2051"
    assert submitted.time is not None
    assert submitted.time.isoformat() == "2024-10-24T13:02:11+00:00"
    assert submitted.contact.model_dump(exclude_none=True) == {
        "email": "anna.schmidt@example.com",
        "first_name": "Anna",
        "last_name": "Schmidt",
        "company": "Nordlicht Logistik GmbH",
        "job_title": "Head of Operations",
        "country": "DE",
        "phone": "+49 30 1234567",
        "company_size": 51,  # the form's "51-200": at least 51
    }
    assert submitted.properties.model_dump(exclude_none=True) == {
        "form": "Request a demo",
        "form_id": "4",
        "url": "https://www.example.com/demo?utm_source=newsletter&utm_campaign=autumn-launch",
    }


def test_an_email_open_is_timed_by_this_open_and_told_apart_from_the_next_open() -> None:
    opened = only(fixture("email_on_open.json"))
    assert opened.channel_type == ("email", "open")
    assert opened.id == "mautic:email_on_open:88431:1"
    assert opened.time is not None
    assert opened.time.isoformat() == "2024-10-24T13:27:40+00:00"
    assert opened.properties.model_dump(exclude_none=True) == {
        "subject": "What's new this autumn",
        "email_id": "7",
        "message_id": "671a0d2b3c4e5",
    }
    again = fixture("email_on_open.json")
    stat = again["mautic.email_on_open"][0]["stat"]
    stat.update(openCount=2, lastOpened="2024-10-25T08:00:00+00:00")
    second = only(again)
    assert second.id == "mautic:email_on_open:88431:2"
    assert second.time is not None
    assert second.time.isoformat() == "2024-10-25T08:00:00+00:00"


def test_a_page_hit_is_a_page_view_and_a_tracked_email_link_is_that_emails_click() -> None:
    visit = only(fixture("page_on_hit.json"))
    assert visit.channel_type == ("web", "page_view")
    assert visit.id == "mautic:page_on_hit:90217"
    assert visit.properties.model_dump(exclude_none=True) == {
        "url": "https://www.example.com/pricing",
        "referrer": "https://www.example.com/",
        "title": "Pricing | Example",
    }
    click = only(fixture("page_on_hit.email_click.json"))
    assert click.channel_type == ("email", "click")
    assert click.id == "mautic:page_on_hit:90245"
    assert click.contact.email == "chloe.martin@example.com"
    assert click.contact.country == "FR"
    assert click.properties.model_dump(exclude_none=True) == {
        "url": "https://www.example.com/autumn-launch",
        "subject": "What's new this autumn",
        "email_id": "7",
    }


@pytest.mark.parametrize(
    ("name", "change", "job_title"),
    [
        ("lead_post_save_new.json", "created", "CTO"),
        ("lead_post_save_update.json", "updated", "VP Operations"),
    ],
)
def test_a_new_or_updated_contact_is_a_profile_update(
    name: str, change: str, job_title: str
) -> None:
    update = only(fixture(name))
    assert update.channel_type == ("email", "profile_update")
    assert update.id is not None
    assert update.id.startswith(f"mautic:{name.removesuffix('.json')}:")
    assert update.contact.job_title == job_title
    assert update.contact.company
    assert update.contact.country
    assert update.contact.phone
    assert update.properties.model_dump(exclude_none=True) == {"change": change}


def test_a_contact_added_to_a_company_takes_its_name_industry_and_size() -> None:
    change = only(fixture("lead_company_change.json"))
    assert change.channel_type == ("email", "profile_update")
    contact = change.contact
    assert (contact.company, contact.industry, contact.company_size) == (
        "Carter & Finch Ltd",
        "Technology",
        45,
    )
    assert change.properties.model_dump(exclude_none=True) == {"change": "company added"}
    removed = fixture("lead_company_change.json")
    removed["mautic.lead_company_change"][0]["added"] = False
    left = only(removed)
    assert left.contact.industry is None
    assert left.properties.model_dump(exclude_none=True) == {"change": "company removed"}


def test_a_points_change_is_recorded_with_its_delta() -> None:
    change = only(fixture("lead_points_change.json"))
    assert change.channel_type == ("email", "points_changed")
    assert change.properties.model_dump(exclude_none=True) == {"delta": 5, "points": 20}
    assert change.time is not None
    assert change.time.isoformat() == "2024-10-24T13:27:41+00:00"


def test_an_unsubscribe_or_bounce_is_one_and_other_subscription_changes_update_the_profile() -> (
    None
):
    # Mautic's own sample (a manual do-not-contact) and the verbs of its DoNotContact reasons.
    sample = json.loads(
        (FIXTURES / "assets" / "lead_channel_subscription_changed.json").read_bytes()
    )
    kinds = {}
    for status in ("unsubscribed", "bounced", "manual"):
        item = {**copy.deepcopy(sample[0]), "new_status": status}
        kinds[status] = only({"mautic.lead_channel_subscription_changed": [item]}).channel_type
    assert kinds == {
        "unsubscribed": ("email", "unsubscribe"),
        "bounced": ("email", "bounce"),
        "manual": ("email", "profile_update"),
    }


def test_a_queued_body_gets_one_result_per_item_in_body_order() -> None:
    delivery = delivered(fixture("queued_mixed.json"))
    assert [item.label for item in delivery.items] == [
        "mautic.form_on_submit[0]",
        "mautic.form_on_submit[1]",
        "mautic.lead_post_save_update[0]",
        "mautic.lead_post_save_update[1]",
        "mautic.page_on_hit[0]",
        "mautic.page_on_hit[1]",
        "mautic.page_on_hit[2]",
        "mautic.lead_post_save_new[0]",
        "mautic.email_on_open[0]",
        "mautic.email_on_open[1]",
        "mautic.lead_points_change[0]",
    ]
    kinds = [interaction.channel_type for interaction in interactions(fixture("queued_mixed.json"))]
    assert kinds.count(("web", "form_submit")) == 2
    assert ("email", "click") in kinds
    assert len({interaction.id for interaction in interactions(fixture("queued_mixed.json"))}) == 11


def test_one_bad_item_or_an_unknown_type_is_refused_alone() -> None:
    body = fixture("queued_mixed.json")
    body["mautic.form_on_submit"][1] = {"submission": "not an object"}
    body["mautic.lead_list_change"] = [{"contact": {}, "segment": {}, "action": "added"}]
    body["mautic.from_the_future"] = [{}]
    items = delivered(body).items
    refused = {item.label: item.errors[0] for item in items if item.raw is None}
    assert set(refused) == {
        "mautic.form_on_submit[1]",
        "mautic.lead_list_change[0]",
        "mautic.from_the_future[0]",
    }
    assert refused["mautic.form_on_submit[1]"].field == "submission"
    assert "segment membership" in refused["mautic.lead_list_change[0]"].message
    assert "does not know" in refused["mautic.from_the_future[0]"].message
    assert sum(1 for item in items if item.raw is not None) == 10


def test_an_unknown_event_type_is_logged_by_type_without_the_items(
    caplog: pytest.LogCaptureFixture,
) -> None:
    body = fixture("queued_mixed.json")
    body["mautic.from_the_future"] = [{"contact": {"email": "ada@example.com"}}, {}]
    body["mautic.lead_list_change"] = [{"contact": {}, "segment": {}, "action": "added"}]
    delivered(body)
    [record] = [r for r in caplog.records if r.name == "services.ingest.mautic"]
    assert record.items == {"mautic.from_the_future": 2}  # type: ignore[attr-defined]
    assert "ada@example.com" not in caplog.text


def test_the_test_payload_records_nothing_and_says_so() -> None:
    delivery = delivered(fixture("test_payload.json"))
    assert delivery.items == []
    assert delivery.note is not None
    assert delivery.note.startswith("Mautic test payload: signature verified")
    assert "mautic.form_on_submit" in delivery.note


def test_a_redelivery_gives_the_same_ids_whatever_the_key_order() -> None:
    body = fixture("queued_mixed.json")
    reordered = json.loads(json.dumps(body, sort_keys=True))
    first = [item.raw["id"] for item in delivered(body).items if item.raw]
    again = [item.raw["id"] for item in delivered(reordered).items if item.raw]
    assert sorted(first) == sorted(again)


def test_a_late_item_keeps_its_own_time() -> None:
    # Queued items arrive hours after they happened: no window refuses them.
    [submitted, *_] = interactions(fixture("queued_mixed.json"))
    assert submitted.time is not None
    assert submitted.time.year == 2024


def test_a_body_that_is_not_an_object_is_refused_whole() -> None:
    with pytest.raises(ProblemError) as caught:
        delivered([1, 2])
    assert caught.value.status == 422


def test_definitions_may_match_the_new_types_and_they_score_nothing_by_default() -> None:
    assert RuleMatch(channel="email", type="points_changed").type == "points_changed"
    assert RuleMatch(channel="social", type="form_submit").type == "form_submit"
    model = ScoringModel(load_definitions(ROOT / "lead-definitions.yaml").definitions)
    profile = {"email": "ben.carter@example.com", "job_title": "CTO", "company_size": 500}
    lead = [
        StoredInteraction("e1", 1_790_000_000.0, "email", "profile_update", profile=profile),
        StoredInteraction("e2", 1_790_000_001.0, "email", "points_changed"),
    ]
    result = evaluate(model, lead, 1_790_000_002.0, explain=True)
    assert result.points_by_rule == {}
    assert result.fit > 0  # the profile it carried counts as fit


def test_mautics_own_sample_contact_maps_its_country_name_and_one_without_email_is_anonymous() -> (
    None
):
    sample = fixture("test_payload.json")["mautic.lead_post_save_update"]
    update = only({"mautic.lead_post_save_update": sample})
    assert (update.contact.email, update.contact.country) == ("john@example.com", "CZ")
    for group in sample[0]["contact"]["fields"].values():
        if isinstance(group, dict):
            group.pop("email", None)
    anonymous = only({"mautic.lead_post_save_update": sample})
    assert anonymous.contact.identity_key == "mautic:52"
