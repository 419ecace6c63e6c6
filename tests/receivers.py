"""A webhook receiver for tests: a real HTTP server that answers as it is told to, in turn,
and remembers every request and whether it acknowledged it."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request, Response

from tests.serving import served

# An answer the receiver never gives: it holds the request until the test ends.
SILENCE = None
RETRY_AFTER_SECONDS = 1


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    answer: int | None  # None: it never answered

    @property
    def acknowledged(self) -> bool:
        return self.answer is not None and 200 <= self.answer < 300

    def json(self) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(self.body)
        return found


@dataclass
class Receiver:
    url: str = ""
    # Per path, the answers to give in turn; after them (and on other paths), `otherwise`.
    scripts: dict[str, deque[int | None]] = field(default_factory=dict)
    otherwise: dict[str, int] = field(default_factory=dict)
    requests: list[Received] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    _released: asyncio.Event = field(default_factory=asyncio.Event)

    def answers(self, path: str, *answers: int | None, then: int = 200) -> str:
        """Answer requests to `path` with these, in turn, then always with `then`;
        answers its URL."""
        self.scripts[path] = deque(answers)
        self.otherwise[path] = then
        return f"{self.url}{path}"

    def on(self, path: str) -> list[Received]:
        return [request for request in self.requests if request.path == path]

    async def wait_for(self, path: str, acknowledged: int) -> None:
        """Until `path` has acknowledged this many requests (30 s at most)."""
        async with asyncio.timeout(30):
            while sum(r.acknowledged for r in self.on(path)) < acknowledged:
                self.arrived.clear()
                await self.arrived.wait()

    async def _receive(self, request: Request) -> Response:
        path, body = request.url.path, await request.body()
        script = self.scripts.get(path)
        answer = script.popleft() if script else self.otherwise.get(path, 200)
        self.requests.append(Received(path, dict(request.headers), body, answer))
        self.arrived.set()
        if answer is SILENCE:
            await self._released.wait()
            return Response(status_code=200)  # long after the sender gave up
        headers = {"retry-after": str(RETRY_AFTER_SECONDS)} if answer == 429 else {}
        return Response(content=f"answer {answer}", status_code=answer, headers=headers)


@asynccontextmanager
async def running_receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    app = FastAPI()
    app.add_api_route("/{path:path}", receiver._receive, methods=["POST"])
    async with served(app) as url:
        receiver.url = url
        try:
            yield receiver
        finally:
            receiver._released.set()
