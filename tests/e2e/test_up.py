"""`leadflow up` on a bare machine: embedded broker and database, a 202, Ctrl-C stops all."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from shared.embedded import free_port, stop_process

pytestmark = pytest.mark.e2e


def _listening(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    with socket.socket() as probe:
        return probe.connect_ex((host, int(port))) == 0


def test_up_runs_the_stack_with_embedded_defaults_and_stops_cleanly(tmp_path: Path) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "LEADFLOW_API_KEYS")
    }
    env.update(
        {
            "LEADFLOW_INGEST_PORT": str(free_port()),
            "LEADFLOW_SCORING_PORT": str(free_port()),
            "LEADFLOW_ROUTER_PORT": str(free_port()),
            "LEADFLOW_STATE_DIR": str(tmp_path),
        }
    )
    output = tmp_path / "up.out"
    with output.open("wb") as out:
        up = subprocess.Popen(
            [sys.executable, "-m", "leadflow", "up"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 90
        while "Ctrl-C stops everything" not in output.read_text():
            assert up.poll() is None, output.read_text()
            assert time.monotonic() < deadline, output.read_text()
            time.sleep(0.2)
        stack = json.loads((tmp_path / "stack.json").read_text())
        credentials = json.loads((tmp_path / "dev-credentials.json").read_text())
        key = next(iter(credentials["api_keys"]))

        response = httpx.post(
            f"{stack['ingest_url']}/v1/events",
            json={
                "channel": "web",
                "type": "demo_request",
                "contact": {"email": "ada@example.com"},
            },
            headers={"X-API-Key": key},
            timeout=10,
        )
        assert response.status_code == 202
        event_id = response.json()["id"]

        tail = subprocess.run(
            [sys.executable, "-m", "leadflow", "tail", "lead.interactions", "--no-follow"],
            env=env,
            capture_output=True,
            timeout=60,
            check=True,
        )
        records = [json.loads(line) for line in tail.stdout.decode().splitlines()]
        markers = [r for r in records if r["value"]["type"] == "leadflow.log.started"]
        assert len(markers) == 6  # each partition starts with its log marker
        records = [r for r in records if r not in markers]
        assert [record["value"]["id"] for record in records] == [event_id]
        assert records[0]["key"] == "ada@example.com"

        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=60) == 0
        assert not _listening(stack["ingest_url"])
        assert not _listening("http://" + stack["kafka_bootstrap_servers"])
        service_logs = [line for line in output.read_text().splitlines() if line.startswith("{")]
        assert service_logs, "the services wrote no log"
        assert not [line for line in service_logs if "@example.com" in line]
    finally:
        stop_process(up)
