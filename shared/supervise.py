"""Background loops that log their failures and start again, until the service stops.

A loop that fails because a dependency every loop needs is down (the database) is not
a bug to log with its traceback: every loop pauses until the dependency answers again,
and the outage is logged once when it starts and once when it ends.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass

log = logging.getLogger(__name__)

Loop = Callable[[asyncio.Event], Awaitable[None]]
FIRST_BACKOFF_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 10.0
# A probe is one connection attempt: cheap enough to keep the pause after an outage short.
MAX_PROBE_INTERVAL_SECONDS = 2.0


@dataclass(frozen=True)
class Dependency:
    """What every loop needs; while it is down, the loops wait for it instead of failing."""

    name: str
    is_down: Callable[[BaseException], bool]
    answers: Callable[[], Awaitable[bool]]


class Outage:
    """Pauses the loops while `dependency` is down: the first to notice probes, others wait."""

    def __init__(self, dependency: Dependency) -> None:
        self.dependency = dependency
        self._over = asyncio.Event()
        self._over.set()

    async def wait_out(self, loop_name: str, error: BaseException, stopping: asyncio.Event) -> bool:
        """Wait until the dependency answers again; False if it answers now (not an outage)."""
        if self._over.is_set():
            if await self.dependency.answers():
                return False
            if self._over.is_set():  # no other loop noticed meanwhile: this one probes
                await self._probe_until_over(loop_name, error, stopping)
                return True
        await self._over.wait()
        return True

    async def _probe_until_over(
        self, loop_name: str, error: BaseException, stopping: asyncio.Event
    ) -> None:
        self._over.clear()
        name = self.dependency.name
        log.warning(
            "%s unreachable; background loops paused",
            name,
            extra={"noticed_by": loop_name, "error": type(error).__name__},
        )
        try:
            await self._until_it_answers(stopping)
        finally:
            self._over.set()  # also when stopping, so that the waiting loops wake and stop
        if not stopping.is_set():
            log.info("%s reachable again; background loops resumed", name)

    async def _until_it_answers(self, stopping: asyncio.Event) -> None:
        interval = FIRST_BACKOFF_SECONDS
        while not await stopped_within(stopping, interval):
            if await self.dependency.answers():
                return
            interval = min(interval * 2, MAX_PROBE_INTERVAL_SECONDS)


async def stopped_within(stopping: asyncio.Event, seconds: float) -> bool:
    """Wait up to `seconds`, less if `stopping` is set meanwhile; answer whether it is."""
    with suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)
    return stopping.is_set()


def every(seconds: float, step: Callable[[], Awaitable[object]]) -> Loop:
    """A loop that does `step`, then waits `seconds` (or until it is stopped), and again."""

    async def run(stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            await step()
            await stopped_within(stopping, seconds)

    return run


async def supervise(
    name: str, loop: Loop, stopping: asyncio.Event, outage: Outage | None = None
) -> None:
    """Run `loop` until `stopping` is set; when it fails, log it and restart with backoff.

    A failure that says the `outage` dependency is down pauses the loop until it is back.
    """
    backoff = FIRST_BACKOFF_SECONDS
    while not stopping.is_set():
        try:
            await loop(stopping)
            backoff = FIRST_BACKOFF_SECONDS
        except asyncio.CancelledError:
            raise
        except Exception as error:
            if outage is None or not outage.dependency.is_down(error):
                log.exception(
                    "background loop failed; restarting",
                    extra={"loop": name, "in_seconds": backoff},
                )
            elif await outage.wait_out(name, error, stopping):
                continue
            else:  # it answers again already: only this loop's connection was dropped
                log.warning(
                    "%s connection lost; restarting",
                    outage.dependency.name,
                    extra={"loop": name, "error": type(error).__name__, "in_seconds": backoff},
                )
            await stopped_within(stopping, backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)


@asynccontextmanager
async def running(
    loops: dict[str, Loop], grace_seconds: float = 3, *, pause_on: Dependency | None = None
) -> AsyncIterator[None]:
    """Run every loop supervised for the duration of the block, then stop them.

    While `pause_on` is down, every loop that needs it waits for it. On exit the loops are
    asked to stop and given `grace_seconds` to finish what they are doing (a batch is one
    transaction, so stopping mid-way loses nothing); then cancelled.
    """
    stopping = asyncio.Event()
    outage = Outage(pause_on) if pause_on is not None else None
    tasks = [
        asyncio.create_task(supervise(name, loop, stopping, outage), name=name)
        for name, loop in loops.items()
    ]
    try:
        yield
    finally:
        stopping.set()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace_seconds)
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
