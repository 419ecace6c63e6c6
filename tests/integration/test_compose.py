"""docker-compose itself accepts docker-compose.yml (tests/unit/test_compose.py checks
what the file says). An integration test although it needs no broker or database: it runs
an outside tool, from Debian, that may be missing or slow to start; a unit test is pure.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.unit.test_compose import COMPOSE_FILE, REPO_ROOT, required_variables

pytestmark = pytest.mark.integration


def test_docker_compose_accepts_the_file() -> None:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (apt-get install docker-compose)")
    result = subprocess.run(
        [binary, "-f", str(COMPOSE_FILE), "config", "-q"],
        cwd=REPO_ROOT,
        env={**os.environ, **required_variables()},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr + result.stdout
