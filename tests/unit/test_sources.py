"""Declared sources: the worked examples on their senders' fixtures, the mapping engine,
and a sources file's problems named by file, line, source and key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.ingest.domain import Rejected, parse_interaction
from services.ingest.sources import (
    DeclaredMapping,
    Delivery,
    SourcesError,
    load_sources,
    parse_sources,
)
from shared.events import Interaction
from shared.problems import ProblemError

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "sources"
FIXTURES = ROOT / "tests" / "fixtures"
FILE = Path("sources.yaml")


def example(name: str) -> DeclaredMapping:
    [source] = load_sources(EXAMPLES / f"{name}.yaml")
    return DeclaredMapping(source)


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_bytes())


def valid(delivery: Delivery) -> list[Interaction]:
    parsed = []
    for item in delivery.items:
        assert item.raw is not None, (item.label, item.errors)
        interaction = parse_interaction(item.raw)
        assert not isinstance(interaction, Rejected), (item.label, interaction)
        parsed.append(interaction)
    return parsed


def test_typeform_example_maps_a_form_response() -> None:
    [response] = valid(example("typeform").deliver(fixture("typeform/form_response.json"), None))
    assert response.channel_type == ("web", "form_submit")
    assert response.id == "typeform:a3a12ec67a1365927098a606107fac15"
    assert response.time is not None
    assert response.time.isoformat() == "2018-01-18T18:17:02+00:00"
    assert response.contact.model_dump(exclude_none=True) == {
        "email": "laura@example.com",
        "anonymous_id": "abc123456",
        "first_name": "Laura",
    }
    assert response.properties.model_dump(exclude_none=True) == {
        "form": "Webhooks example",
        "form_id": "lT4Z3j",
    }


def test_linkedin_example_maps_a_new_lead_anonymously_and_a_deleted_one_to_nothing() -> None:
    linkedin = example("linkedin-lead-gen")
    [lead] = valid(linkedin.deliver(fixture("linkedin/lead_notification.created.json"), None))
    assert lead.channel_type == ("social", "form_submit")
    assert lead.id == "linkedin:urn:li:leadGenFormResponse:1a2b3c-4"
    assert lead.contact.model_dump(exclude_none=True) == {
        "anonymous_id": "urn:li:leadGenFormResponse:1a2b3c-4"
    }
    assert lead.campaign == "linkedin-ads"
    assert lead.time is not None
    assert lead.time.isoformat() == "2023-06-07T23:59:18.881000+00:00"
    assert lead.properties.model_dump(exclude_none=True)["network"] == "linkedin"

    deleted = linkedin.deliver(fixture("linkedin/lead_notification.deleted.json"), None)
    assert deleted.items == []
    assert deleted.note is not None
    assert "found no item" in deleted.note


def test_meta_example_maps_every_leadgen_change_of_a_batch() -> None:
    meta = example("meta-lead-ads")
    leads = valid(meta.deliver(fixture("meta-lead-ads/leadgen_notification.batched.json"), None))
    assert [lead.id for lead in leads] == [
        "meta-lead-ads:233370042045346",
        "meta-lead-ads:233370042045347",
        "meta-lead-ads:233370042045348",
    ]
    assert {lead.channel_type for lead in leads} == {("social", "form_submit")}
    assert leads[0].contact.anonymous_id == "meta-lead:233370042045346"
    assert leads[0].time is not None
    assert leads[0].time.isoformat() == "2024-10-29T15:00:58+00:00"


def mapping(interaction: dict[str, Any], **declared: Any) -> DeclaredMapping:
    source = {
        "name": "crm",
        "signature": {"scheme": "hmac-sha256", "header": "X-Sig", "encoding": "hex"},
        "interaction": interaction,
        **declared,
    }
    [parsed] = parse_sources(yaml.safe_dump({"sources": [source]}), FILE)
    return DeclaredMapping(parsed)


BASIC = {
    "channel": {"value": "web"},
    "type": "kind",
    "contact": {"email": "who.email", "company_size": "who.size", "phone": "who.phone"},
}


def test_paths_and_constants_fill_the_interaction_and_empty_values_are_left_out() -> None:
    engine = mapping({**BASIC, "properties": {"tags": "tags", "form": {"value": "contact-us"}}})
    [item] = engine.deliver(
        {"kind": "form_submit", "who": {"email": "a@example.com", "size": 250, "phone": 4930}},
        None,
    ).items
    assert item.raw is not None
    assert item.raw["channel"] == "web"
    assert item.raw["contact"] == {"email": "a@example.com", "company_size": 250, "phone": "4930"}
    assert item.raw["properties"] == {"form": "contact-us"}  # tags: absent in the item


@pytest.mark.parametrize(
    ("body", "count"),
    [({"kind": "form_submit"}, 1), ([{"kind": "form_submit"}] * 3, 3), (None, 0), ([], 0)],
)
def test_items_an_object_is_one_a_list_is_each_nothing_is_none(body: Any, count: int) -> None:
    assert len(mapping(BASIC).deliver(body, None).items) == count


@pytest.mark.parametrize("body", [{"items": 5}, {"items": [{}] * 1001}])
def test_items_that_are_not_items_or_too_many_refuse_the_body(body: Any) -> None:
    with pytest.raises(ProblemError) as caught:
        mapping(BASIC, items="items").deliver(body, None)
    assert caught.value.status == 422


def test_one_bad_item_is_refused_and_the_others_map() -> None:
    engine = mapping({**BASIC, "id": "join('-', [ref, kind])"}, items="rows")
    body = {"rows": [{"kind": "page_view", "ref": "a"}, "text", {"kind": "page_view", "ref": None}]}
    first, second, third = engine.deliver(body, None).items
    assert first.raw is not None
    assert first.raw["id"] == "crm:a-page_view"
    assert second.raw is None
    assert second.errors[0].message == "is a text, not an object"
    assert third.raw is None
    assert third.errors[0].field == "id"
    assert "join() got null" in third.errors[0].message


@pytest.mark.parametrize(
    ("declared", "given", "expected"),
    [
        ("at", "2026-01-02T03:04:05Z", "2026-01-02T03:04:05Z"),
        ({"path": "at", "epoch": "seconds"}, 1_700_000_000, "2023-11-14T22:13:20+00:00"),
        (
            {"path": "at", "epoch": "milliseconds"},
            1_700_000_000_500,
            "2023-11-14T22:13:20.500000+00:00",
        ),
        ({"path": "at", "epoch": "seconds"}, "1700000000", "2023-11-14T22:13:20+00:00"),
    ],
)
def test_time_from_text_or_from_a_declared_epoch(declared: Any, given: Any, expected: str) -> None:
    [item] = mapping({**BASIC, "time": declared}).deliver({"at": given}, None).items
    assert item.raw is not None
    assert item.raw["time"] == expected


@pytest.mark.parametrize(
    ("declared", "given", "message"),
    [
        ("at", 1_700_000_000, "declare epoch"),
        ({"path": "at", "epoch": "seconds"}, 10**30, "not a time in seconds"),
        ({"path": "at", "epoch": "seconds"}, [1], "a list, not a time"),
    ],
)
def test_a_time_that_is_not_one_refuses_the_item(declared: Any, given: Any, message: str) -> None:
    [item] = mapping({**BASIC, "time": declared}).deliver({"at": given}, None).items
    assert item.raw is None
    assert item.errors[0].field == "time"
    assert message in item.errors[0].message


def test_ids_are_namespaced_and_stable_for_a_redelivery() -> None:
    engine = mapping({**BASIC, "id": "ref"})
    [own] = engine.deliver({"ref": "lead 7 with spaces"}, None).items
    assert own.raw is not None
    assert own.raw["id"].startswith("crm:sha256:")
    [short] = engine.deliver({"ref": 7}, None).items
    assert short.raw is not None
    assert short.raw["id"] == "crm:7"

    digest = mapping(BASIC)
    [first] = digest.deliver({"a": 1, "b": [1, 2]}, None).items
    [again] = digest.deliver({"b": [1, 2], "a": 1}, None).items
    assert first.raw is not None
    assert again.raw is not None
    assert first.raw["id"] == again.raw["id"]
    [standard] = digest.deliver([{"a": 1}, {"a": 1}], "msg_9").items[1:]
    assert standard.raw is not None
    assert standard.raw["id"] == "crm:msg_9:1"


def problems_of(text: str) -> list[str]:
    with pytest.raises(SourcesError) as caught:
        parse_sources(text, FILE)
    rendered = str(caught.value).splitlines()
    assert rendered[0] == f"{FILE}: {len(rendered) - 1} problem(s) in the sources"
    return [line.strip() for line in rendered[1:]]


SIGNED = "    signature: {scheme: hmac-sha256, header: X-Sig, encoding: hex}\n"
MAPPED = (
    "    interaction:\n"
    "      channel: {value: web}\n"
    "      type: {value: form_submit}\n"
    "      contact: {email: email}\n"
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "sources:\n  - name: crm\n    signature: {scheme: none}\n" + MAPPED,
            "sources.yaml:3: source 'crm': signature: every source is signed",
        ),
        (
            "sources:\n  - name: crm\n" + MAPPED,
            "sources.yaml:2: source 'crm': signature: required",
        ),
        (
            "sources:\n  - name: crm\n    signature: {scheme: hmac-sha256, encoding: hex}\n"
            + MAPPED,
            "sources.yaml:3: source 'crm': signature.header: required",
        ),
        (
            "sources:\n  - name: crm\n" + SIGNED + "    items: 'entry[.'\n" + MAPPED,
            "sources.yaml:4: source 'crm': items: not a JMESPath expression",
        ),
        (
            "sources:\n  - name: crm\n" + SIGNED + MAPPED.replace("email: email", "mail: x"),
            "sources.yaml:7: source 'crm': interaction.contact.mail: not a contact field",
        ),
        (
            "sources:\n  - name: crm\n" + SIGNED + MAPPED.replace("{value: web}", "web"),
            "sources.yaml:5: source 'crm': interaction.channel: 'web' is read as a JMESPath",
        ),
        (
            "sources:\n  - name: crm\n" + SIGNED + MAPPED.replace("form_submit", "follow"),
            "sources.yaml:6: source 'crm': interaction.type.value: 'follow' is not a type of "
            "the web channel",
        ),
        (
            "sources:\n  - name: crm\n" + SIGNED + MAPPED.replace("email: email", "phone: p"),
            "sources.yaml:7: source 'crm': interaction.contact: map contact.email or "
            "contact.anonymous_id",
        ),
        (
            "sources:\n  - name: mautic\n" + SIGNED + MAPPED,
            "sources.yaml:2: source 'mautic': name: 'mautic' is built in",
        ),
        (
            "sources:\n  - name: crm\n" + SIGNED + MAPPED + "  - name: crm\n" + SIGNED + MAPPED,
            "sources.yaml:8: source 'crm': name: 'crm' is declared twice",
        ),
        (
            "sources:\n  - signature: {scheme: standard-webhooks}\n" + MAPPED,
            "sources.yaml:2: source #1 (no name): name: required",
        ),
        ("sources: [\n", "sources.yaml:2: (document): not valid YAML"),
    ],
)
def test_each_problem_names_the_file_line_source_and_key(text: str, expected: str) -> None:
    found = problems_of(text)
    assert any(line.startswith(expected) for line in found), found


def test_every_problem_of_a_file_is_listed_at_once() -> None:
    social = MAPPED.replace("web", "social").replace("form_submit", "follow")
    text = "sources:\n  - name: crm\n" + SIGNED + social + "      id: {value: same}\n"
    assert problems_of(text) == [
        "sources.yaml:4: source 'crm': interaction.properties: the social channel needs "
        "properties.network",
        "sources.yaml:8: source 'crm': interaction.id: id must be a path: a constant would be "
        "the same for every item",
    ]


def test_an_unreadable_file_is_one_problem() -> None:
    with pytest.raises(SourcesError, match="cannot be read"):
        load_sources(ROOT / "no-such-sources.yaml")
