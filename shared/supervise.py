"""Background loops that log their failures and start again, until the service stops."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress

log = logging.getLogger(__name__)

Loop = Callable[[asyncio.Event], Awaitable[None]]
MAX_BACKOFF_SECONDS = 10.0


async def supervise(name: str, loop: Loop, stopping: asyncio.Event) -> None:
    """Run `loop` until `stopping` is set; when it fails, log it and restart with backoff."""
    backoff = 0.5
    while not stopping.is_set():
        try:
            await loop(stopping)
            backoff = 0.5
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(
                "background loop failed; restarting", extra={"loop": name, "in_seconds": backoff}
            )
            with suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)


@asynccontextmanager
async def running(loops: dict[str, Loop], grace_seconds: float = 3) -> AsyncIterator[None]:
    """Run every loop supervised for the duration of the block, then stop them.

    On exit the loops are asked to stop and given `grace_seconds` to finish what they are
    doing (a batch is one transaction, so stopping mid-way loses nothing); then cancelled.
    """
    stopping = asyncio.Event()
    tasks = [
        asyncio.create_task(supervise(name, loop, stopping), name=name)
        for name, loop in loops.items()
    ]
    try:
        yield
    finally:
        stopping.set()
        _, pending = await asyncio.wait(tasks, timeout=grace_seconds)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
