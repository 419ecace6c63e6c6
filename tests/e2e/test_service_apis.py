"""Every service's OpenAPI document holds under fuzzing: no 5xx, no answer it does not declare.

Schemathesis generates valid and invalid requests for every operation from the document
the running service serves, with each kind of credential, so that fuzzing gets past
authentication; then again with the ids of a real rep and of a lead handed to them, so
that it reaches what is behind a 404.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from shared.embedded import stop_process
from shared.settings import Settings
from tests.conftest import TEST_ADMIN_KEY
from tests.processes import ServiceProcess, start_service

pytestmark = pytest.mark.e2e

ADMIN = {"Authorization": f"Bearer {TEST_ADMIN_KEY}"}
API_KEY = {"X-API-Key": "all-channels-key"}
PROBLEM_JSON = "application/problem+json"
EMAIL = "fuzz@example.com"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Enough to find what fuzzing found so far within make test; raise it to fuzz longer.
MAX_EXAMPLES = int(os.environ.get("LEADFLOW_FUZZ_EXAMPLES", "15"))
# An endless response: schemathesis would wait for its end forever.
STREAM = "GET /v1/handoffs/stream"


def holds_under_fuzzing(
    operation: Any, mode: GenerationMode, headers: Mapping[str, str], ids: Mapping[str, str]
) -> None:
    """Every generated request of `operation` gets an answer its document declares."""

    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=dict(ids) or None))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def holds(case: Any) -> None:
        case.call_and_validate(headers=dict(headers), checks=CHECKS)

    holds()


def fuzz(url: str, headers: Mapping[str, str], ids: Mapping[str, str] | None = None) -> list[str]:
    """Fuzz the operations with `headers`, valid and invalid requests; answer the failures.

    With `ids`, only the operations with one of those path parameters, set to them.
    """
    schema: Any = schemathesis.openapi.from_url(f"{url}/openapi.json")
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        used = {
            name: value for name, value in (ids or {}).items() if f"{{{name}}}" in operation.path
        }
        if operation.label == STREAM or (ids and not used):
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                holds_under_fuzzing(operation, mode, headers, used)
            except Unsatisfiable:
                assert mode == GenerationMode.NEGATIVE  # nothing in the request to spoil
            except (Exception, FailureGroup) as error:  # to report every operation at once
                failures.append(f"{operation.label} ({mode}): {error}")
    return failures


def assert_holds(failures: list[str]) -> None:
    assert not failures, "\n\n".join(failures)


@pytest.fixture(scope="module")
def configured(settings: Settings, database_url: str) -> Settings:
    return settings.model_copy(update={"database_url": database_url})


def _started(name: str, settings: Settings, log_dir: Path) -> Iterator[ServiceProcess]:
    service = start_service(name, settings, log_dir / f"{name}.log")
    try:
        yield service
    finally:
        stop_process(service.process)


@pytest.fixture(scope="module")
def scoring_process(
    configured: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    yield from _started("scoring", configured, tmp_path_factory.mktemp("scoring"))


@pytest.fixture(scope="module")
def router_process(
    configured: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    yield from _started("router", configured, tmp_path_factory.mktemp("router"))


@dataclass(frozen=True)
class HandedOff:
    rep_id: str
    rep: dict[str, str]
    lead_id: str


def wait_for_queued_lead(router: httpx.Client, rep_id: str, within_seconds: float = 90) -> str:
    deadline = time.monotonic() + within_seconds
    while time.monotonic() < deadline:
        queue = router.get(f"/v1/reps/{rep_id}/queue", headers=ADMIN).json()
        if queue:
            lead_id: str = queue[0]["id"]
            return lead_id
        time.sleep(0.2)
    raise AssertionError("the demo request never reached the rep's queue")


def log_tail(service: ServiceProcess, lines: int = 30) -> str:
    return "\n".join(service.log_path.read_text().splitlines()[-lines:])


@pytest.fixture(scope="module")
def handed_off(
    ingest_process: ServiceProcess,
    scoring_process: ServiceProcess,
    router_process: ServiceProcess,
) -> HandedOff:
    """A rep, and a lead the stack handed to them (a demo request enters at the hand-off)."""
    with httpx.Client(base_url=router_process.url, timeout=10) as router:
        created = router.post("/v1/reps", json={"name": "Fuzzy Rep", "team": "emea"}, headers=ADMIN)
        assert created.status_code == 201, created.text
        rep_id = created.json()["id"]
        sent = httpx.post(
            f"{ingest_process.url}/v1/events",
            json={
                "channel": "web",
                "type": "demo_request",
                "campaign": "demo-request",
                "contact": {"email": EMAIL, "company": "Fuzz Ltd", "country": "GB"},
            },
            headers=API_KEY,
            timeout=10,
        )
        assert sent.status_code == 202, sent.text
        try:
            lead_id = wait_for_queued_lead(router, rep_id)
        except AssertionError as error:
            scored = httpx.get(
                f"{scoring_process.url}/v1/leads", params={"email": EMAIL}, headers=ADMIN
            )
            tails = "\n".join(
                f"--- {service.log_path.name}\n{log_tail(service)}"
                for service in (scoring_process, router_process)
            )
            raise AssertionError(f"{error}; scoring holds {scored.text}\n{tails}") from error
    return HandedOff(rep_id, {"Authorization": f"Bearer {created.json()['token']}"}, lead_id)


def references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from references(value)
    elif isinstance(node, list):
        for value in node:
            yield from references(value)


def resolves(document: dict[str, Any], reference: str) -> bool:
    node: Any = document
    for part in reference.removeprefix("#/").split("/"):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return reference.startswith("#/")


def operations(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield f"{method.upper()} {path}", operation


def test_every_problem_answer_is_documented_as_problem_json(
    ingest_process: ServiceProcess, scoring_process: ServiceProcess, router_process: ServiceProcess
) -> None:
    for service in (ingest_process, scoring_process, router_process):
        document = httpx.get(f"{service.url}/openapi.json").json()
        assert all(resolves(document, reference) for reference in references(document))
        for label, operation in operations(document):
            responses = operation["responses"]
            if operation.get("requestBody"):
                assert {"413", "415", "422"} <= responses.keys(), label
            if "application/json" in operation.get("requestBody", {}).get("content", {}):
                assert "400" in responses, label
            if label == "GET /readyz":
                continue  # not ready is a report of the checks, not a problem
            for status, response in responses.items():
                if int(status) >= 400:
                    assert list(response["content"]) == [PROBLEM_JSON], f"{label} {status}"
                if status == "503":
                    assert "Retry-After" in response["headers"], label


def test_ingest_openapi_holds(ingest_process: ServiceProcess) -> None:
    assert_holds(fuzz(ingest_process.url, API_KEY))


def test_scoring_openapi_holds(scoring_process: ServiceProcess, handed_off: HandedOff) -> None:
    url = scoring_process.url
    assert_holds(fuzz(url, ADMIN) + fuzz(url, ADMIN, {"lead_id": handed_off.lead_id}))


def test_router_openapi_holds(router_process: ServiceProcess, handed_off: HandedOff) -> None:
    url, rep, rep_id = router_process.url, handed_off.rep, handed_off.rep_id
    failures = [
        *fuzz(url, rep),
        *fuzz(url, rep, {"rep_id": rep_id, "lead_id": handed_off.lead_id}),
        *fuzz(url, ADMIN),
        # Last: the roster routes may deactivate the rep, whose token then stops working.
        *fuzz(url, ADMIN, {"rep_id": rep_id}),
    ]
    assert_holds(failures)


def test_leads_filter_by_campaign(scoring_process: ServiceProcess) -> None:
    response = httpx.get(
        f"{scoring_process.url}/v1/leads", params={"campaign": "demo-request"}, headers=ADMIN
    )
    assert response.status_code == 200
