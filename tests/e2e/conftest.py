"""The ingest service as a real process, the way `leadflow up` and docker compose run it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.embedded import stop_process
from shared.settings import Settings
from tests.processes import ServiceProcess, start_service


@pytest.fixture(scope="module")
def ingest_process(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    log_path = tmp_path_factory.mktemp("ingest") / "ingest.log"
    service = start_service("ingest", settings, log_path, LEADFLOW_LOG_LEVEL="DEBUG")
    try:
        yield service
    finally:
        stop_process(service.process)
