"""`leadflow up` on a bare machine: embedded broker and database, a local mailbox, a 202,
Ctrl-C stops all; and what dies while it runs (a service, the broker, PostgreSQL) is
started again."""

from __future__ import annotations

import json
import os
import re
import signal
import smtplib
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.embedded import free_port, stop_process
from shared.topics import CATALOG

pytestmark = pytest.mark.e2e

STARTED = "Ctrl-C stops everything"
DEADLINE_SECONDS = 90


def _listening(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    with socket.socket() as probe:
        return probe.connect_ex((host, int(port))) == 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")


@dataclass
class Up:
    """A running `leadflow up`: its output, its stack file, every child pid it ever had."""

    process: subprocess.Popen[bytes]
    output: Path
    state_dir: Path
    env: dict[str, str]
    pids_seen: set[int] = field(default_factory=set)

    def text(self) -> str:
        return self.output.read_text()

    def stack(self) -> dict[str, Any]:
        content: dict[str, Any] = json.loads((self.state_dir / "stack.json").read_text())
        self.pids_seen.update(content.get("pids", {}).values())
        return content

    def pid(self, child: str) -> int:
        pid: int = self.stack()["pids"][child]
        return pid

    def api_key(self) -> str:
        credentials = json.loads((self.state_dir / "dev-credentials.json").read_text())
        return str(next(iter(credentials["api_keys"])))

    def wait_for(self, what: str, done: Callable[[], bool]) -> None:
        """Wait, with a generous deadline, until `done()`; `up` must keep running meanwhile."""
        deadline = time.monotonic() + DEADLINE_SECONDS
        while not done():
            assert self.process.poll() is None, f"up exited while waiting for {what}\n{self.text()}"
            assert time.monotonic() < deadline, f"no {what} within the deadline\n{self.text()}"
            time.sleep(0.2)

    def wait_for_output(self, pattern: str) -> None:
        self.wait_for(repr(pattern), lambda: re.search(pattern, self.text()) is not None)

    def stop(self) -> None:
        """Ctrl-C; it exits 0 and leaves no child behind."""
        stack = self.stack()
        self.process.send_signal(signal.SIGINT)
        assert self.process.wait(timeout=60) == 0, self.text()
        assert self.pids_seen
        assert not [pid for pid in self.pids_seen if _alive(pid)], self.text()
        assert not _listening(stack["ingest_url"])
        assert not _listening("http://" + stack["kafka_bootstrap_servers"])


@contextmanager
def running_up(tmp_path: Path) -> Iterator[Up]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key
        not in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "LEADFLOW_API_KEYS", "LEADFLOW_SMTP_URL")
    }
    env.update(
        {
            "LEADFLOW_INGEST_PORT": str(free_port()),
            "LEADFLOW_SCORING_PORT": str(free_port()),
            "LEADFLOW_ROUTER_PORT": str(free_port()),
            "LEADFLOW_STATE_DIR": str(tmp_path),
            # restarts and the give-up after five quick deaths in seconds, not 15 s of waiting
            "LEADFLOW_RESTART_DELAY_SECONDS": "0.2",
        }
    )
    output = tmp_path / "up.out"
    with output.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "leadflow", "up"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    up = Up(process, output, tmp_path, env)
    try:
        up.wait_for("the banner", lambda: STARTED in up.text())
        up.stack()
        yield up
    finally:
        stop_process(process)


def _post_interaction(up: Up, email: str) -> httpx.Response:
    return httpx.post(
        f"{up.stack()['ingest_url']}/v1/events",
        json={"channel": "web", "type": "demo_request", "contact": {"email": email}},
        headers={"X-API-Key": up.api_key()},
        timeout=10,
    )


def _accepted(up: Up, email: str, ids: list[str]) -> Callable[[], bool]:
    """Post until ingest answers 202 (it may still be starting); keep the event id."""

    def attempt() -> bool:
        try:
            response = _post_interaction(up, email)
        except httpx.TransportError:
            return False
        if response.status_code == 202:
            ids.append(response.json()["id"])
        return response.status_code == 202

    return attempt


def _tail(up: Up, topic: str) -> list[dict[str, Any]]:
    tail = subprocess.run(
        [sys.executable, "-m", "leadflow", "tail", topic, "--no-follow"],
        env=up.env,
        capture_output=True,
        timeout=60,
        check=True,
    )
    return [json.loads(line) for line in tail.stdout.decode().splitlines()]


def _is_marker(record: dict[str, Any]) -> bool:
    return bool(record["value"]["type"] == "leadflow.log.started")


def _healthy(url: str) -> Callable[[], bool]:
    def answers() -> bool:
        try:
            return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    return answers


def _check_the_local_mailbox(up: Up) -> str:
    """Without LEADFLOW_SMTP_URL, `up` runs a mailbox: its URL is printed and written for
    scripts, the services are told to send mail to it, and it counts what it receives."""
    credentials = json.loads((up.state_dir / "dev-credentials.json").read_text())
    mailbox_url: str = credentials["mailbox"]
    assert f"mailbox  {mailbox_url}" in up.text()
    environ = Path(f"/proc/{up.pid('router')}/environ").read_bytes().split(b"\0")
    [smtp_url] = [v.decode() for v in environ if v.startswith(b"LEADFLOW_SMTP_URL=")]
    host, port = smtp_url.removeprefix("LEADFLOW_SMTP_URL=smtp://").split(":")
    assert host == "127.0.0.1"
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "a@example.com", "b@example.com", "Hi"
    with smtplib.SMTP(host, int(port), timeout=10) as smtp:
        smtp.send_message(message)
    assert httpx.get(f"{mailbox_url}/messages.json", timeout=5).json()["total"] == 1
    up.wait_for_output(r"mailbox: 1 messages received")
    return mailbox_url


def test_up_runs_the_stack_with_embedded_defaults_and_stops_cleanly(tmp_path: Path) -> None:
    with running_up(tmp_path) as up:
        response = _post_interaction(up, "ada@example.com")
        assert response.status_code == 202
        event_id = response.json()["id"]

        records = _tail(up, "lead.interactions")
        markers = [r for r in records if _is_marker(r)]
        assert len(markers) == 6  # each partition starts with its log marker
        records = [r for r in records if r not in markers]
        assert [record["value"]["id"] for record in records] == [event_id]
        assert records[0]["key"] == "ada@example.com"

        mailbox_url = _check_the_local_mailbox(up)
        up.stop()
        assert not _listening(mailbox_url)
        service_logs = [line for line in up.text().splitlines() if line.startswith("{")]
        assert service_logs, "the services wrote no log"
        assert not [line for line in service_logs if "@example.com" in line]


def test_up_restarts_a_service_that_dies(tmp_path: Path) -> None:
    with running_up(tmp_path) as up:
        ingest_url = up.stack()["ingest_url"]
        killed = up.pid("ingest")
        os.kill(killed, signal.SIGKILL)

        up.wait_for_output(rf"ingest \(pid {killed}\) was killed by SIGKILL; restarting it in")
        up.wait_for("a new ingest process", lambda: up.pid("ingest") != killed)
        up.wait_for("ingest's /healthz", _healthy(ingest_url))
        up.wait_for_output(r"ingest answers .*/healthz again")
        assert _post_interaction(up, "grace@example.com").status_code == 202

        up.stop()


def test_up_restarts_the_embedded_broker_and_postgres(tmp_path: Path) -> None:
    with running_up(tmp_path) as up:
        broker = up.pid("broker")
        os.kill(broker, signal.SIGKILL)
        up.wait_for_output(rf"broker \(pid {broker}\) was killed by SIGKILL; restarting it in")
        up.wait_for_output(r"broker restarted \(pid \d+\)")
        assert up.pid("broker") != broker
        ids: list[str] = []
        up.wait_for("an accepted event", _accepted(up, "hopper@example.com", ids))

        # The broker came back empty; `up` created every topic again, with the partitions
        # it wants and their markers, before any service could have one auto-created.
        up.wait_for_output(r"embedded Kafka broker is back, empty; topics created: ")
        for topic in CATALOG:
            partitions = {r["partition"] for r in _tail(up, topic.name) if _is_marker(r)}
            assert partitions == set(range(6)), topic.name
        records = _tail(up, "lead.interactions")
        assert [r["value"]["id"] for r in records if not _is_marker(r)] == ids

        postgres = up.pid("postgres")
        os.kill(postgres, signal.SIGKILL)
        up.wait_for_output(rf"postgres \(pid {postgres}\) was killed by SIGKILL; restarting")
        up.wait_for("a new postgres process", lambda: up.pid("postgres") != postgres)
        up.wait_for_output(r"postgres restarted")
        up.wait_for("an accepted event", _accepted(up, "lovelace@example.com", ids))

        # Scoring (consumer and PostgreSQL) has both leads, so the events still flow.
        scoring_url = up.stack()["scoring_url"]
        admin_key = json.loads((tmp_path / "dev-credentials.json").read_text())["admin_key"]

        def scored(email: str) -> Callable[[], bool]:
            def found() -> bool:
                try:
                    response = httpx.get(
                        f"{scoring_url}/v1/leads",
                        params={"email": email},
                        headers={"Authorization": f"Bearer {admin_key}"},
                        timeout=5,
                    )
                except httpx.TransportError:
                    return False
                return response.status_code == 200 and bool(response.json()["items"])

            return found

        up.wait_for("the first lead scored", scored("hopper@example.com"))
        up.wait_for("the second lead scored", scored("lovelace@example.com"))

        up.stop()


def test_up_gives_up_on_a_service_that_keeps_dying_at_once(tmp_path: Path) -> None:
    with running_up(tmp_path) as up:
        stack = up.stack()
        host, port = stack["ingest_url"].removeprefix("http://").split(":")
        killed = up.pid("ingest")
        os.kill(killed, signal.SIGKILL)
        up.wait_for("ingest's port to be free", lambda: not _listening(stack["ingest_url"]))
        with socket.socket() as squatter:  # every new ingest fails to listen on its port
            squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAIT
            squatter.bind((host, int(port)))
            squatter.listen()
            assert up.process.wait(timeout=DEADLINE_SECONDS) == 1, up.text()
        assert re.search(
            r"ingest \(pid \d+\) exited with status \d+; it died 5 times, each within 10 s of "
            r"its start: giving up, stopping everything",
            up.text(),
        ), up.text()
        assert len(re.findall(r"ingest \(pid \d+\) .*; restarting it in", up.text())) == 4
        assert not [pid for pid in up.pids_seen | set(up.stack()["pids"].values()) if _alive(pid)]
        assert not _listening("http://" + stack["kafka_bootstrap_servers"])
