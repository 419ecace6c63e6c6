"""Services as real processes for tests: started like `leadflow up` does, stopped by pid."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from shared.embedded import free_port, stop_process
from shared.settings import Settings


@dataclass(frozen=True)
class ServiceProcess:
    url: str
    log_path: Path
    process: subprocess.Popen[bytes]


def service_environment(settings: Settings, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.require_broker(),
        "LEADFLOW_API_KEYS": json.dumps(settings.api_keys),
        "LEADFLOW_WEBHOOK_SECRETS": json.dumps(settings.webhook_secrets),
        "LEADFLOW_ADMIN_KEY": settings.admin_key or "",
        "LEADFLOW_DEFINITIONS": str(settings.definitions_path.resolve()),
        "LEADFLOW_LOG_LEVEL": "INFO",
        **extra,
    }
    if settings.database_url:
        env["DATABASE_URL"] = settings.database_url
    return env


def start_service(
    name: str, settings: Settings, log_path: Path, *, wait_ready: bool = True, **extra: str
) -> ServiceProcess:
    """Run `leadflow serve <name>` on a free port; wait for /readyz (or just /healthz)."""
    port = free_port()
    env = service_environment(settings, **{f"LEADFLOW_{name.upper()}_PORT": str(port), **extra})
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "leadflow", "serve", name],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    probe = "/readyz" if wait_ready else "/healthz"
    while True:
        try:
            if httpx.get(f"{url}{probe}", timeout=1).status_code == 200:
                return ServiceProcess(url, log_path, process)
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            return ServiceProcess(url, log_path, process)
        if time.monotonic() > deadline:
            stop_process(process)  # the caller never gets it: stop it here
            raise RuntimeError(f"{name} did not become ready:\n{log_path.read_text()}")
        time.sleep(0.1)
