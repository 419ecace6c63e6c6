"""The running ingest process: its logs hold no people (test_service_apis.py fuzzes it)."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from tests.processes import ServiceProcess

pytestmark = pytest.mark.e2e

API_KEY = {"X-API-Key": "all-channels-key"}


def test_no_email_address_reaches_the_log(ingest_process: ServiceProcess) -> None:
    url = ingest_process.url
    contact = {"email": "secret.person@example.org", "first_name": "Secret", "phone": "+4912345"}
    with httpx.Client(base_url=url, headers=API_KEY, timeout=10) as http:
        accepted = http.post(
            "/v1/events",
            json={"channel": "web", "type": "form_submit", "contact": contact},
        )
        assert accepted.status_code == 202
        invalid = http.post(
            "/v1/events",
            json={
                "channel": "web",
                "type": "nope",
                "contact": {"email": "bad secret.person@example.org"},
            },
        )
        assert invalid.status_code == 422
        webhook = http.post(
            "/v1/webhooks/mautic",
            content=json.dumps({"mautic.form_on_submit": [], "email": "secret.person@example.org"}),
            headers={
                "Webhook-Signature": base64.b64encode(b"forged").decode(),
                "Content-Type": "application/json",
            },
        )
        assert webhook.status_code == 401
        imported = http.post(
            "/v1/imports/tradeshow?campaign=expo",
            content=b"email,scanned_at\nsecret.person@example.org,2026-11-20T10:00:00Z\nsecret.person@example,x\n",
            headers={"Content-Type": "text/csv"},
        )
        assert imported.json()["accepted"] == 1
        assert http.get(f"{url}/v1/events/secret.person@example.org").status_code in (404, 405)
    log = ingest_process.log_path.read_text()
    assert log.strip(), "the service wrote no log at all"
    assert "secret.person" not in log
    assert "Secret" not in log
    assert "+4912345" not in log
    for line in log.splitlines():
        json.loads(line)  # every line is one structured JSON record
