"""Serving one service's app with uvicorn, so that it always stops by itself."""

from __future__ import annotations

from types import FrameType

import uvicorn
from fastapi import FastAPI

# What still runs this long after a stop is cancelled, so that the service stops by itself
# (its consumer leaving its group) before a supervisor kills it.
SHUTDOWN_GRACE_SECONDS = 3


class TellingServer(uvicorn.Server):
    """uvicorn's server, which tells the app when it starts stopping (`app.state.stopping`):
    a response that never ends by itself, the hand-off stream, ends then."""

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self.app = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.app.state.stopping = True
        super().handle_exit(sig, frame)


def run_until_stopped(app: FastAPI, host: str, port: int) -> None:
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
    )
    TellingServer(config, app).run()
