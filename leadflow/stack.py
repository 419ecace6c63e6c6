"""`leadflow up`: the whole stack on one machine, with embedded broker and database if needed."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.db import create_database, migrate, wait_until_ready
from shared.definitions import load_definitions
from shared.embedded import LOCALHOST, start_broker, start_postgres, stop_process
from shared.kafka import create_topics
from shared.settings import Settings

# name -> the Settings field holding its port; each is `services.<name>.bootstrap`.
SERVICE_PORTS: dict[str, str] = {
    "ingest": "ingest_port",
    "scoring": "scoring_port",
    "router": "router_port",
}
STACK_FILE = "stack.json"
CREDENTIALS_FILE = "dev-credentials.json"
DATABASE_NAME = "leadflow"


@dataclass
class Stack:
    settings: Settings
    urls: dict[str, str]
    credentials: dict[str, Any]


def _write_private(path: Path, content: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content, indent=2) + "\n")
    path.chmod(0o600)


def read_stack_file(state_dir: Path) -> dict[str, str]:
    """The addresses a running `leadflow up` wrote, so other commands find its broker/DB."""
    path = state_dir / STACK_FILE
    if not path.exists():
        return {}
    content: dict[str, str] = json.loads(path.read_text())
    return content


@contextmanager
def _embedded_dependencies(settings: Settings, say: Callable[[str], None]) -> Iterator[Settings]:
    """Start what the environment does not provide; stop it again on exit."""
    with ExitStack() as stack:
        updates: dict[str, Any] = {}
        state_dir = settings.state_dir
        state_dir.mkdir(parents=True, exist_ok=True)
        if not settings.kafka_bootstrap_servers:
            log = (state_dir / "broker.log").open("ab")
            stack.callback(log.close)
            broker = start_broker(log=log)
            stack.callback(broker.stop)
            updates["kafka_bootstrap_servers"] = broker.bootstrap_servers
            say(f"embedded Kafka broker (tansu, memory) at {broker.bootstrap_servers}")
        if not settings.database_url:
            postgres = start_postgres(state_dir / "postgres")
            stack.callback(postgres.stop)
            asyncio.run(wait_until_ready(postgres.url()))
            updates["database_url"] = asyncio.run(create_database(postgres.url(), DATABASE_NAME))
            say(f"embedded PostgreSQL at {LOCALHOST}:{postgres.port} (data in {postgres.data_dir})")
        yield settings.model_copy(update=updates)


def _dev_credentials(settings: Settings) -> tuple[Settings, dict[str, Any]]:
    """Generate what the operator did not configure: an API key for every channel, an admin key."""
    updates: dict[str, Any] = {}
    if not settings.api_keys:
        updates["api_keys"] = {f"dev-{secrets.token_urlsafe(18)}": ["*"]}
    if not settings.admin_key:
        updates["admin_key"] = f"admin-{secrets.token_urlsafe(18)}"
    settings = settings.model_copy(update=updates)
    credentials = {
        "api_keys": settings.api_keys,
        "admin_key": settings.admin_key,
        "webhook_providers": sorted(settings.webhook_secrets),
    }
    return settings, credentials


def service_environment(settings: Settings) -> dict[str, str]:
    """The environment a service process needs to reach what `up` started."""
    env = dict(os.environ)
    env.update(
        {
            "KAFKA_BOOTSTRAP_SERVERS": settings.require_broker(),
            "DATABASE_URL": settings.require_database(),
            "LEADFLOW_API_KEYS": json.dumps(settings.api_keys),
            "LEADFLOW_WEBHOOK_SECRETS": json.dumps(settings.webhook_secrets),
            "LEADFLOW_ADMIN_KEY": settings.admin_key or "",
            "LEADFLOW_DEFINITIONS": str(settings.definitions_path.resolve()),
        }
    )
    return env


def _wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with status {process.returncode} while starting")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1):  # noqa: S310 - our loopback URL
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer /healthz within {timeout:.0f}s")


@contextmanager
def _services(settings: Settings) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name, port_field in SERVICE_PORTS.items():
            process = subprocess.Popen(
                [sys.executable, "-m", "leadflow", "serve", name],
                env=service_environment(settings),
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            processes[name] = process
            _wait_healthy(f"http://{settings.http_host}:{getattr(settings, port_field)}", process)
        yield processes
    finally:
        for process in processes.values():
            stop_process(process)


def run_stack(configured: Settings, say: Callable[[str], None]) -> int:
    """Run everything until Ctrl-C / SIGTERM or until a service dies; answer the exit status."""
    stopping = False

    def request_stop(signum: int, _: object) -> None:
        nonlocal stopping
        stopping = True

    # Both explicitly: a shell that starts `up` in the background makes it ignore SIGINT.
    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    loaded = load_definitions(configured.definitions_path)  # a broken file stops us here
    say(f"lead definitions {configured.definitions_path}: version {loaded.version}")
    with _embedded_dependencies(configured, say) as reachable:
        migrate(reachable.require_database())
        created = asyncio.run(create_topics(reachable))
        say(f"migrations applied; topics created: {', '.join(created) or 'all existed'}")
        settings, credentials = _dev_credentials(reachable)
        urls = {
            name: f"http://{settings.http_host}:{getattr(settings, port)}"
            for name, port in SERVICE_PORTS.items()
        }
        _write_private(settings.state_dir / CREDENTIALS_FILE, credentials)
        _write_private(
            settings.state_dir / STACK_FILE,
            {
                "kafka_bootstrap_servers": settings.require_broker(),
                "database_url": settings.require_database(),
                **{f"{name}_url": url for name, url in urls.items()},
            },
        )
        with _services(settings) as processes:
            say(_banner(Stack(settings, urls, credentials)))
            while not stopping:
                for name, process in processes.items():
                    if process.poll() is not None:
                        say(f"{name} exited with status {process.returncode}; stopping")
                        return 1
                time.sleep(0.5)
            say("stopping")
    return 0


def _banner(stack: Stack) -> str:
    key = next(iter(stack.settings.api_keys))
    lines = ["", "leadflow is up:"]
    lines += [f"  {name:<8} {url}   (API docs: {url}/docs)" for name, url in stack.urls.items()]
    lines += [
        f"  API key (all channels): {key}",
        f"  admin key:              {stack.settings.admin_key}",
        f"  credentials written to  {stack.settings.state_dir / CREDENTIALS_FILE}",
        "",
        "Try:",
        f"  curl -s -X POST {stack.urls['ingest']}/v1/events -H 'X-API-Key: {key}' "
        "-H 'Content-Type: application/json' "
        '-d \'{"channel":"web","type":"content_download","contact":{"email":"ada@example.com"},'
        '"properties":{"asset":"pricing.pdf"}}\'',
        "  .venv/bin/leadflow tail lead.interactions --no-follow",
        f"  curl -s '{stack.urls['scoring']}/v1/leads?email=ada@example.com' "
        f"-H 'Authorization: Bearer {stack.settings.admin_key}'",
        "  .venv/bin/leadflow tail lead.lifecycle --no-follow",
        "",
        "Ctrl-C stops everything.",
    ]
    return "\n".join(lines)
