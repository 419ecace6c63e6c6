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
from collections.abc import Callable
from contextlib import ExitStack, closing
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, Any

from leadflow.supervisor import Child, GiveUp, Supervisor
from shared.db import create_database, migrate, wait_until_ready
from shared.definitions import load_definitions
from shared.embedded import (
    LOCALHOST,
    POSTGRES_STOP_SIGNAL,
    free_port,
    start_broker,
    start_postgres,
    stop_process,
)
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
    mailbox_url: str | None = None


def _write_private(path: Path, content: dict[str, Any]) -> None:
    """Write a file only its owner may read, whole: a reader never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.draft")
    draft.write_text(json.dumps(content, indent=2) + "\n")
    draft.chmod(0o600)
    draft.replace(path)


def read_stack_file(state_dir: Path) -> dict[str, Any]:
    """The addresses (and child pids) a running `leadflow up` wrote, so other commands find it."""
    path = state_dir / STACK_FILE
    if not path.exists():
        return {}
    content: dict[str, Any] = json.loads(path.read_text())
    return content


def _embedded_dependencies(
    settings: Settings, supervisor: Supervisor, logs: ExitStack, say: Callable[[str], None]
) -> Settings:
    """Start what the environment does not provide, supervised; `logs` closes the broker's log."""
    updates: dict[str, Any] = {}
    state_dir = settings.state_dir
    state_dir.mkdir(parents=True, exist_ok=True)
    if not settings.kafka_bootstrap_servers:
        log = logs.enter_context((state_dir / "broker.log").open("ab"))
        broker = start_broker(log=log)
        updates["kafka_bootstrap_servers"] = broker.bootstrap_servers
        say(f"embedded Kafka broker (tansu, memory) at {broker.bootstrap_servers}")
        restart = partial(_restart_broker, settings.model_copy(update=updates), log, say)
        supervisor.dependencies.append(
            Child(
                "broker",
                restart,
                process=broker.process,
                started_at=time.monotonic(),
            )
        )
    if not settings.database_url:
        postgres = start_postgres(state_dir / "postgres")
        supervisor.dependencies.append(
            Child(
                "postgres",
                partial(_restart_postgres, postgres.data_dir, postgres.port),
                stop_signal=POSTGRES_STOP_SIGNAL,
                process=postgres.process,
                started_at=time.monotonic(),
            )
        )
        asyncio.run(wait_until_ready(postgres.url()))
        updates["database_url"] = asyncio.run(create_database(postgres.url(), DATABASE_NAME))
        say(f"embedded PostgreSQL at {LOCALHOST}:{postgres.port} (data in {postgres.data_dir})")
    return settings.model_copy(update=updates)


def _restart_broker(
    settings: Settings, log: IO[bytes], say: Callable[[str], None]
) -> subprocess.Popen[bytes]:
    """The broker again on its port, empty (memory storage), with our topics created again."""
    broker = start_broker(port=int(settings.require_broker().rpartition(":")[2]), log=log)
    try:
        created = asyncio.run(create_topics(settings))
    except Exception as error:
        broker.stop()
        raise RuntimeError(f"creating the topics failed: {type(error).__name__}") from error
    say(f"embedded Kafka broker is back, empty; topics created: {', '.join(created) or 'none'}")
    return broker.process


def _restart_postgres(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    """PostgreSQL again on the same data directory and port, once it accepts sessions."""
    postgres = start_postgres(data_dir, port)
    try:
        asyncio.run(wait_until_ready(postgres.url()))
    except Exception as error:
        postgres.stop()
        raise RuntimeError(f"it accepted no session: {type(error).__name__}") from error
    return postgres.process


def _dev_mailbox(
    settings: Settings, supervisor: Supervisor, say: Callable[[str], None]
) -> tuple[Settings, str | None]:
    """Without LEADFLOW_SMTP_URL, a local mailbox (supervised) receives the services' mail;
    the settings given to the services point at it. Answers its page's URL."""
    if settings.smtp_url:
        return settings, None
    smtp_port, http_port = free_port(), free_port()
    url = f"http://{LOCALHOST}:{http_port}"
    child = Child("mailbox", partial(_spawn_mailbox, smtp_port, http_port, url))
    supervisor.dependencies.append(child)
    child.start()
    smtp_url = f"smtp://{LOCALHOST}:{smtp_port}"
    say(f"local mailbox at {url} (the services send mail to {smtp_url})")
    return settings.model_copy(update={"smtp_url": smtp_url}), url


def _spawn_mailbox(smtp_port: int, http_port: int, url: str) -> subprocess.Popen[bytes]:
    """The mailbox process, once its page answers (a new one starts with no mail)."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "leadflow",
            "mailbox",
            f"--smtp-port={smtp_port}",
            f"--http-port={http_port}",
        ],
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_healthy(url, process)
    except RuntimeError:
        stop_process(process)
        raise
    return process


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
    if settings.smtp_url:
        env["LEADFLOW_SMTP_URL"] = settings.smtp_url
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


def _spawn_service(name: str, settings: Settings) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "leadflow", "serve", name],
        env=service_environment(settings),
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )


def _start_services(settings: Settings, supervisor: Supervisor, urls: dict[str, str]) -> None:
    """Start each service and wait for its /healthz; from then on the supervisor keeps it."""
    for name in SERVICE_PORTS:
        child = Child(name, partial(_spawn_service, name, settings), health_url=urls[name])
        supervisor.services.append(child)
        _wait_healthy(urls[name], child.start())


def run_stack(configured: Settings, say: Callable[[str], None]) -> int:
    """Run everything until Ctrl-C / SIGTERM, restarting children that die; the exit status.

    It gives up (status 1) only when one child keeps dying right after it starts.
    """
    stopping = False

    def request_stop(signum: int, _: object) -> None:
        nonlocal stopping
        stopping = True

    # Both explicitly: a shell that starts `up` in the background makes it ignore SIGINT.
    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    loaded = load_definitions(configured.definitions_path)  # a broken file stops us here
    say(f"lead definitions {configured.definitions_path}: version {loaded.version}")
    stack_file: dict[str, Any] = {}

    def write_stack_file() -> None:
        stack_file["pids"] = supervisor.pids()
        _write_private(configured.state_dir / STACK_FILE, stack_file)

    supervisor = Supervisor(
        say, on_started=write_stack_file, first_restart_delay=configured.restart_delay_seconds
    )
    # closing(supervisor) stops every child, by pid, before the broker's log is closed.
    with ExitStack() as logs, closing(supervisor):
        reachable = _embedded_dependencies(configured, supervisor, logs, say)
        reachable, mailbox_url = _dev_mailbox(reachable, supervisor, say)
        migrate(reachable.require_database())
        created = asyncio.run(create_topics(reachable))
        say(f"migrations applied; topics created: {', '.join(created) or 'all existed'}")
        settings, credentials = _dev_credentials(reachable)
        if mailbox_url:
            credentials["mailbox"] = mailbox_url
        urls = {
            name: f"http://{settings.http_host}:{getattr(settings, port)}"
            for name, port in SERVICE_PORTS.items()
        }
        _write_private(settings.state_dir / CREDENTIALS_FILE, credentials)
        stack_file.update(
            {
                "kafka_bootstrap_servers": settings.require_broker(),
                "database_url": settings.require_database(),
                **{f"{name}_url": url for name, url in urls.items()},
                **({"mailbox_url": mailbox_url} if mailbox_url else {}),
            }
        )
        write_stack_file()
        _start_services(settings, supervisor, urls)
        write_stack_file()
        say(_banner(Stack(settings, urls, credentials, mailbox_url)))
        while not stopping:
            try:
                supervisor.check()
            except GiveUp as reason:
                say(str(reason))
                return 1
            time.sleep(0.2)
        say("stopping")
    return 0


def _banner(stack: Stack) -> str:
    key = next(iter(stack.settings.api_keys))
    lines = ["", "leadflow is up:"]
    lines += [f"  {name:<8} {url}   (API docs: {url}/docs)" for name, url in stack.urls.items()]
    if stack.mailbox_url:
        lines.append(
            f"  mailbox  {stack.mailbox_url}   (the mail the services send; "
            f"LEADFLOW_SMTP_URL={stack.settings.smtp_url})"
        )
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
