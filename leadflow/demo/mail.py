"""The notifications a demo run made, as the local mailbox of `leadflow up` counts them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from rich.progress import Progress, TaskID

MAILBOX_EVERY_SECONDS = 2.0


@dataclass
class MailCount:
    """How many messages reached the mailbox at `url` since `start` (a count: never what
    they say). No `url`: there is no local mailbox to ask."""

    client: httpx.AsyncClient
    url: str | None
    report: Callable[[str], None]
    before: int | None = None
    received: int | None = None

    async def _total(self) -> int | None:
        if self.url is None:
            return None
        try:
            answer = await self.client.get(f"{self.url}/messages.json", params={"limit": 0})
            answer.raise_for_status()
            return int(answer.json()["total"])
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            self.report(f"the local mailbox at {self.url} did not answer")
            return None

    async def start(self) -> bool:
        """Note what the mailbox holds already; answer whether it can be counted."""
        self.before = await self._total()
        self.received = 0 if self.before is not None else None
        return self.before is not None

    async def update(self) -> None:
        total = await self._total()
        if total is not None and self.before is not None:
            # A restarted mailbox starts again from nothing.
            self.received = max(total - self.before, self.received or 0)

    async def watch(self, bar: Progress, task: TaskID) -> None:
        """Keep the progress line of the notifications up to date, until cancelled."""
        while True:
            await self.update()
            bar.update(task, completed=self.received or 0)
            await asyncio.sleep(MAILBOX_EVERY_SECONDS)

    def line(self) -> str:
        if self.url is None:
            return (
                "no local mailbox (LEADFLOW_SMTP_URL is set, or the stack was not started by "
                "`leadflow up`): notifications went to the configured SMTP server, if any"
            )
        if self.received is None:
            return f"the local mailbox at {self.url} did not answer: notifications not counted"
        return f"{self.received} notifications reached the local mailbox: read them at {self.url}"
