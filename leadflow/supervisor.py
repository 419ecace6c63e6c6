"""Keeping `leadflow up`'s children running, the way docker compose's restart policy does.

A child that dies is started again after a delay that doubles with each quick death
(one within `QUICK_DEATH_SECONDS` of its start) and starts over once it ran longer than
that. After `GIVE_UP_AFTER_QUICK_DEATHS` quick deaths in a row something is wrong that
restarting will not fix: the supervisor gives up and `up` stops everything.

Dependencies (the embedded broker and PostgreSQL) are started again before any service;
the services ride out their absence (ingest answers 503, consumers retry). The embedded
broker comes back empty: `up` creates the topics again, and so would the services (no
client of ours lets the broker create a topic, see `shared.kafka`).
"""

from __future__ import annotations

import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

from shared.embedded import stop_processes

QUICK_DEATH_SECONDS = 10.0
FIRST_DELAY_SECONDS = 1.0
MAX_DELAY_SECONDS = 30.0
GIVE_UP_AFTER_QUICK_DEATHS = 5


@dataclass
class RestartBackoff:
    """How long to wait before starting a child again, and when to stop trying."""

    quick_deaths: int = 0

    def after_death(self, ran_for: float, first_delay: float = FIRST_DELAY_SECONDS) -> float | None:
        """The delay before the next start, or None when the child keeps dying at once."""
        if ran_for >= QUICK_DEATH_SECONDS:
            self.quick_deaths = 0  # it ran fine for a while: the backoff starts over
            return first_delay
        self.quick_deaths += 1
        if self.quick_deaths >= GIVE_UP_AFTER_QUICK_DEATHS:
            return None
        return min(first_delay * 2.0 ** (self.quick_deaths - 1), MAX_DELAY_SECONDS)


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with status {returncode}"


@dataclass(eq=False)
class Child:
    """One supervised process: how to start and stop it, and its restart state.

    `launch` answers the running process or raises RuntimeError when it did not come up
    (it stops what it started first).
    """

    name: str
    launch: Callable[[], subprocess.Popen[bytes]]
    stop_signal: int = signal.SIGTERM
    health_url: str | None = None
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restart_at: float = 0.0
    backoff: RestartBackoff = field(default_factory=RestartBackoff)
    awaiting_health: bool = False

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def start(self) -> subprocess.Popen[bytes]:
        self.started_at = time.monotonic()
        self.process = self.launch()
        return self.process


def stop_together(children: list[Child]) -> None:
    """Stop these children (those running) at once, each by its pid."""
    stop_processes(
        [(child.process, child.stop_signal) for child in children if child.process is not None]
    )
    for child in children:
        child.process = None
        child.awaiting_health = False


def _answers_health(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=0.5):  # noqa: S310 - loopback
            return True
    except OSError:
        return False


class GiveUp(Exception):
    """A child died too often right after starting; the message says which and how."""


class Supervisor:
    """Restarts dead children: dependencies first, services once every dependency runs."""

    def __init__(
        self,
        say: Callable[[str], None],
        on_started: Callable[[], None],
        first_restart_delay: float = FIRST_DELAY_SECONDS,
    ) -> None:
        self.say = say
        self.first_restart_delay = first_restart_delay
        self.on_started = on_started  # e.g. rewrite the stack file with the new pids
        self.dependencies: list[Child] = []
        self.services: list[Child] = []

    def pids(self) -> dict[str, int]:
        children = self.dependencies + self.services
        return {child.name: child.pid for child in children if child.pid is not None}

    def close(self) -> None:
        """Stop every child: services first, then dependencies in reverse order; each by pid."""
        stop_together(self.services)
        for dependency in reversed(self.dependencies):
            stop_together([dependency])

    def check(self) -> None:
        """One round: notice deaths, start what is due. Raises GiveUp."""
        now = time.monotonic()
        for child in self.dependencies + self.services:
            if child.process is not None and child.process.poll() is not None:
                ran_for = now - child.started_at
                self._died(child, describe_exit(child.process.returncode), ran_for)
        for dependency in self.dependencies:
            if dependency.process is None and now >= dependency.restart_at:
                self._restart(dependency)
        if all(dependency.process is not None for dependency in self.dependencies):
            for service in self.services:
                if service.process is None and time.monotonic() >= service.restart_at:
                    self._restart(service)
        for service in self.services:
            url = service.health_url
            if service.awaiting_health and service.process and url and _answers_health(url):
                service.awaiting_health = False
                self.say(f"{service.name} answers {url}/healthz again")

    def _died(self, child: Child, how: str, ran_for: float) -> None:
        who = child.name if child.pid is None else f"{child.name} (pid {child.pid})"
        child.process = None
        child.awaiting_health = False
        delay = child.backoff.after_death(ran_for, self.first_restart_delay)
        if delay is None:
            raise GiveUp(
                f"{who} {how}; it died {GIVE_UP_AFTER_QUICK_DEATHS} times, "
                f"each within {QUICK_DEATH_SECONDS:.0f} s of its start: giving up, stopping "
                "everything"
            )
        child.restart_at = time.monotonic() + delay
        self.say(f"{who} {how}; restarting it in {delay:g} s")

    def _restart(self, child: Child) -> None:
        try:
            child.start()
        except (RuntimeError, OSError) as error:
            self._died(child, f"did not start ({error})", ran_for=0.0)
            return
        child.awaiting_health = child.health_url is not None
        self.say(f"{child.name} restarted (pid {child.pid})")
        self.on_started()
