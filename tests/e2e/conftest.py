"""The ingest service as a real process, the way `leadflow up` and docker compose run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from shared.embedded import free_port, stop_process
from shared.settings import Settings


@dataclass(frozen=True)
class RunningService:
    url: str
    log_path: Path
    process: subprocess.Popen[bytes]


@pytest.fixture(scope="module")
def ingest_process(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningService]:
    port = free_port()
    log_path = tmp_path_factory.mktemp("ingest") / "ingest.log"
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.require_broker(),
        "LEADFLOW_API_KEYS": json.dumps(settings.api_keys),
        "LEADFLOW_WEBHOOK_SECRETS": json.dumps(settings.webhook_secrets),
        "LEADFLOW_INGEST_PORT": str(port),
        "LEADFLOW_LOG_LEVEL": "DEBUG",
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "leadflow", "serve", "ingest"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"ingest did not become ready:\n{log_path.read_text()}")
            time.sleep(0.1)
        yield RunningService(url, log_path, process)
    finally:
        stop_process(process)
