"""The servers a benchmark starts and the lean HTTP/1.1 client it talks to them with.

Each server is a subprocess (`python -m leadflow serve <name>`, or `bench/bare_app.py`)
logging to a file, in its own session, stopped by its pid (`shared.embedded.stop_process`).
Only 127.0.0.1 is used.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from bench.common import REPO_ROOT
from shared.embedded import LOCALHOST, stop_process

# --- a lean HTTP/1.1 client ----------------------------------------------------------------


class HttpConnection:
    """One keep-alive HTTP/1.1 connection to 127.0.0.1; parses only status and Content-Length.

    An httpx.AsyncClient costs a large share of a core at a thousand requests a second,
    which a load generator sharing the machine with the servers cannot afford.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, port: int) -> HttpConnection:
        reader, writer = await asyncio.open_connection(LOCALHOST, port, limit=1 << 20)
        return cls(reader, writer)

    async def request(self, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
        self._writer.write(head + body)
        header = await self._reader.readuntil(b"\r\n\r\n")
        status = int(header[9:12])
        lowered = header.lower()
        start = lowered.find(b"\r\ncontent-length:")
        if start < 0:
            if b"\r\ntransfer-encoding:" in lowered:
                raise RuntimeError("chunked responses are not supported by this client")
            return status, b""
        start += len(b"\r\ncontent-length:")
        length = int(lowered[start : lowered.index(b"\r\n", start)])
        return status, await self._reader.readexactly(length)

    async def close(self) -> None:
        self._writer.close()
        with suppress(OSError):
            await self._writer.wait_closed()


def request_head(
    method: str, port: int, path: str, headers: dict[str, str] | None = None, length: int = 0
) -> bytes:
    """The request line and headers of a request with a JSON body of `length` bytes."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {LOCALHOST}:{port}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if method in {"POST", "PUT", "PATCH"}:
        lines += ["Content-Type: application/json", f"Content-Length: {length}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def request_once(
    port: int, head: bytes, body: bytes = b"", within: float = 5.0
) -> tuple[int, bytes]:
    """One request on a connection of its own (closed after the answer)."""
    connection = await HttpConnection.open(port)
    try:
        async with asyncio.timeout(within):
            return await connection.request(head, body)
    finally:
        await connection.close()


async def get(port: int, path: str) -> tuple[int, bytes]:
    return await request_once(port, request_head("GET", port, path))


# --- servers as subprocesses ----------------------------------------------------------------


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_lines(self) -> list[str]:
        try:
            return self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return []

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_lines()[-lines:]) or "(empty log)"


def launch(name: str, command: list[str], env: dict[str, str], port: int, logs: Path) -> Server:
    """Start `command` from the repository root, logging to `logs`/<name>.log."""
    log_path = logs / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # stopped by us, by pid, not by a stray Ctrl-C
        )
    return Server(name, port, process, log_path)


def stop_all(processes: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM each by its pid, all at once; SIGKILL what lingers (shared.embedded)."""
    if processes:
        with ThreadPoolExecutor(len(processes)) as pool:
            list(pool.map(stop_process, processes))


async def wait_until_answering(server: Server, path: str, within: float) -> None:
    """Poll `path` until it answers 200; fail early if the server exits."""
    deadline = time.monotonic() + within
    last = "no answer"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"{server.name} exited with status {server.process.returncode}:\n{server.tail()}"
            )
        try:
            status, body = await get(server.port, path)
            if status == 200:
                return
            last = f"{status} {body[:200]!r}"
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as error:
            last = repr(error)
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{server.name} {path} not ready in {within:.0f}s: {last}\n{server.tail()}")
