"""Every sender fixture through the real webhook route, read back from lead.interactions.

The payloads are the senders' own (tests/fixtures/*/README.md says from where), signed
over their exact bytes. Mautic's `assets/` are its sample items, sent here inside
`test_payload.json` as Mautic's "Send test payload" sends them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from shared.settings import Settings
from shared.topics import INTERACTIONS
from tests.kafka_reader import read_ids
from tests.stacks import ingest_in_process, standard_webhook_headers

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
SECRET = "leadflow-fixture-secret"  # what the fixtures' READMEs sign with
# The sender's header: (name, encoding, prefix).
SIGNING = {
    "mautic": ("Webhook-Signature", "base64", ""),
    "typeform": ("Typeform-Signature", "base64", "sha256="),
    "linkedin": ("X-LI-Signature", "hex", "hmacsha256="),
    "meta-lead-ads": ("X-Hub-Signature-256", "hex", "sha256="),
}
FOLDERS = {
    "mautic": "mautic",
    "typeform": "typeform",
    "linkedin": "linkedin",
    "meta-lead-ads": "meta-lead-ads",
}
# What each fixture is answered: recorded (202), or verified with nothing to record (200).
NOTHING_TO_RECORD = {
    "mautic/test_payload.json",  # "Send test payload"
    "linkedin/lead_notification.deleted.json",  # a lead withdrawn
    "linkedin/lead_form.json",  # fetched from LinkedIn's API, not a notification
    "linkedin/lead_form_response.json",  # likewise
}


def signed(provider: str, body: bytes) -> dict[str, str]:
    header, encoding, prefix = SIGNING[provider]
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).digest()
    value = digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()
    return {header: prefix + value, "content-type": "application/json"}


def fixture_bodies() -> list[tuple[str, str]]:
    return [
        (provider, str(path.relative_to(FIXTURES)))
        for provider, folder in FOLDERS.items()
        for path in sorted((FIXTURES / folder).glob("*.json"))
    ]


def sources_file(folder: Path, *more: dict[str, Any]) -> Path:
    """The three worked examples (and `more`) as one sources file: LEADFLOW_SOURCES is one."""
    declared = [
        source
        for name in ("typeform", "linkedin-lead-gen", "meta-lead-ads")
        for source in yaml.safe_load((ROOT / "examples/sources" / f"{name}.yaml").read_text())[
            "sources"
        ]
    ]
    path = folder / "sources.yaml"
    path.write_text(yaml.safe_dump({"sources": [*declared, *more]}))
    return path


@pytest.fixture(scope="module")
def examples_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sources_file(tmp_path_factory.mktemp("sources"))


@pytest.fixture(scope="module")
async def client(settings: Settings, examples_file: Path) -> AsyncIterator[httpx.AsyncClient]:
    configured = settings.model_copy(
        update={
            "webhook_secrets": {**settings.webhook_secrets, **dict.fromkeys(SIGNING, SECRET)},
            "sources_path": examples_file,
        }
    )
    async with ingest_in_process(configured) as http:
        yield http


async def post(client: httpx.AsyncClient, provider: str, body: bytes) -> httpx.Response:
    return await client.post(
        f"/v1/webhooks/{provider}", content=body, headers=signed(provider, body)
    )


@pytest.mark.parametrize(("provider", "name"), fixture_bodies())
async def test_every_fixture_reaches_the_topic_through_the_route(
    client: httpx.AsyncClient, settings: Settings, provider: str, name: str
) -> None:
    body = (FIXTURES / name).read_bytes()
    response = await post(client, provider, body)
    answer = response.json()
    if name in NOTHING_TO_RECORD:
        assert response.status_code == 200, answer
        assert answer["accepted"] == 0
        assert answer["detail"]
        return
    assert response.status_code == 202, answer
    ids = {result["id"] for result in answer["results"]}
    assert len(ids) == answer["accepted"] >= 1
    records = await read_ids(settings.require_broker(), INTERACTIONS.name, ids)
    assert set(records) == ids
    for result in answer["results"]:
        envelope = records[result["id"]].value
        assert envelope["source"] == f"/ingest/webhooks/{provider}"
        assert envelope["data"]["id"] == result["id"]
        assert records[result["id"]].key == envelope["subject"]


async def test_a_queued_mautic_body_is_answered_per_item_and_a_redelivery_has_the_same_ids(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    body = (FIXTURES / "mautic/queued_mixed.json").read_bytes()
    first, again = await post(client, "mautic", body), await post(client, "mautic", body)
    assert first.status_code == again.status_code == 202
    results = first.json()["results"]
    assert [result["id"] for result in results] == [r["id"] for r in again.json()["results"]]
    assert results[0]["item"] == "mautic.form_on_submit[0]"
    by_item = {result["item"]: result["id"] for result in results}
    records = await read_ids(settings.require_broker(), INTERACTIONS.name, set(by_item.values()))
    types = {item: records[event_id].value["type"] for item, event_id in by_item.items()}
    assert types["mautic.page_on_hit[2]"] == "leadflow.interaction.email.click"
    assert types["mautic.lead_post_save_new[0]"] == "leadflow.interaction.email.profile_update"
    assert types["mautic.lead_points_change[0]"] == "leadflow.interaction.email.points_changed"
    points = records[by_item["mautic.lead_points_change[0]"]].value["data"]["properties"]
    assert points["delta"] == 5


async def test_one_bad_mautic_item_is_refused_alone_and_unknown_types_are_named(
    client: httpx.AsyncClient,
) -> None:
    payload: dict[str, Any] = json.loads((FIXTURES / "mautic/form_on_submit.json").read_bytes())
    page_hit = json.loads((FIXTURES / "mautic/page_on_hit.json").read_bytes())
    payload["mautic.page_on_hit"] = page_hit["mautic.page_on_hit"] + [{"hit": {"id": 1}}]
    payload["mautic.lead_list_change"] = [{"action": "added"}]
    response = await post(client, "mautic", json.dumps(payload).encode())
    assert response.status_code == 207
    answer = response.json()
    assert (answer["accepted"], answer["rejected"]) == (2, 2)
    refused = {r["item"]: r["errors"][0]["field"] for r in answer["results"] if r["status"] != 202}
    assert refused == {"mautic.page_on_hit[1]": "contact", "mautic.lead_list_change[0]": "event"}


async def test_mautic_items_hours_old_are_taken_and_the_test_payload_says_so(
    client: httpx.AsyncClient,
) -> None:
    late = await post(client, "mautic", (FIXTURES / "mautic/page_on_hit.json").read_bytes())
    assert late.status_code == 202  # its timestamp is from 2024: no window refuses it
    test = await post(client, "mautic", (FIXTURES / "mautic/test_payload.json").read_bytes())
    assert test.status_code == 200
    assert test.json()["detail"].startswith("Mautic test payload")


@pytest.mark.parametrize("provider", sorted(SIGNING))
async def test_a_wrong_or_missing_signature_is_a_401(
    client: httpx.AsyncClient, provider: str
) -> None:
    body = b'{"object": "page", "entry": []}'
    header, *_ = SIGNING[provider]
    wrong = signed(provider, body + b" ")[header].encode()
    for presented in (wrong, "not a signature ✓".encode(), None):
        headers = {b"content-type": b"application/json"}
        if presented is not None:
            headers[header.encode()] = presented
        response = await client.post(f"/v1/webhooks/{provider}", content=body, headers=headers)
        assert response.status_code == 401, presented


async def test_a_declared_source_without_a_secret_is_a_404(
    settings: Settings, examples_file: Path
) -> None:
    async with ingest_in_process(
        settings.model_copy(update={"sources_path": examples_file})
    ) as http:
        body = (FIXTURES / "typeform/form_response.json").read_bytes()
        response = await http.post(
            "/v1/webhooks/typeform", content=body, headers=signed("typeform", body)
        )
        assert response.status_code == 404


async def test_standard_webhooks_answer_an_empty_batch_and_each_item(
    client: httpx.AsyncClient,
) -> None:
    def standard(body: bytes) -> dict[str, str]:
        return standard_webhook_headers(body, message_id="msg_webhooks_test")

    empty = b'{"events": []}'
    nothing = await client.post("/v1/webhooks/standard", content=empty, headers=standard(empty))
    assert nothing.status_code == 200
    assert nothing.json()["detail"] == "nothing to record: the body holds no event"

    event = {"channel": "web", "type": "form_submit", "contact": {"anonymous_id": "a"}}
    body = json.dumps({"events": [event, "not an event"]}).encode()
    mixed = await client.post("/v1/webhooks/standard", content=body, headers=standard(body))
    assert mixed.status_code == 207
    results = mixed.json()["results"]
    assert [(r["item"], r["status"]) for r in results] == [("events[0]", 202), ("events[1]", 422)]
    assert results[0]["id"] == "webhook:msg_webhooks_test:0"
