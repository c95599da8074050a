"""`keybuzz serve`: migrations first, then the API, in a process of its own.

The wait is for the service itself while its process lives, with no deadline: a slow machine
makes it slow, never failed; pytest-timeout stops a hang.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest

from keybuzz.db import libpq_url


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_until_ready(server: subprocess.Popen[bytes], log: Path, url: str) -> httpx.Response:
    while True:
        if server.poll() is not None:
            pytest.fail(
                f"keybuzz serve exited with {server.returncode}:\n{log.read_text()[-3000:]}"
            )
        try:
            return httpx.get(url, timeout=1)  # a poll, not a deadline: asked again if slow
        except httpx.TransportError:
            time.sleep(0.2)


@dataclass(frozen=True)
class Served:
    process: subprocess.Popen[bytes]
    port: int
    ready: httpx.Response
    """What ``/readyz`` answered once the service was up."""


@contextmanager
def served(
    database_url: str, folder: Path, *options: str, log_level: str = "WARNING"
) -> Iterator[Served]:
    """``keybuzz serve`` on ``database_url`` and a free port, up; stopped at the end. Its
    console goes to ``folder / "serve.log"``."""
    port = _free_port()
    env = {**os.environ, "KEYBUZZ_DATABASE_URL": database_url, "KEYBUZZ_LOG_LEVEL": log_level}
    log = folder / "serve.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "keybuzz.cli", "serve", "--port", str(port), *options],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        ready = _wait_until_ready(server, log, f"http://127.0.0.1:{port}/readyz")
        yield Served(server, port, ready)
    finally:
        server.terminate()
        server.wait()


@pytest.mark.slow
def test_keybuzz_serve_migrates_and_answers(fresh_database_url: str, tmp_path: Path) -> None:
    with served(fresh_database_url, tmp_path) as service:
        assert service.ready.json() == {"status": "ready"}
        unauthenticated = httpx.get(f"http://127.0.0.1:{service.port}/api/v1/orders", timeout=None)
        assert unauthenticated.status_code == 401
        assert unauthenticated.headers["content-type"] == "application/problem+json"


@pytest.mark.slow
def test_several_api_processes_run_one_job_worker(fresh_database_url: str, tmp_path: Path) -> None:
    with served(fresh_database_url, tmp_path, "--workers", "2", "--worker") as service:
        assert service.ready.json() == {"status": "ready"}
        with psycopg.connect(libpq_url(fresh_database_url), autocommit=True) as connection:
            while not _alive_workers(connection):  # the job worker may start after the API
                time.sleep(0.2)
            time.sleep(2)  # a second worker, if any, would have registered by now
            assert _alive_workers(connection) == 1
        assert len(_api_processes(service.process.pid)) == 2
    assert not _api_processes(service.process.pid)


@pytest.mark.slow
def test_the_console_does_not_narrate_routine_housekeeping(
    fresh_database_url: str, tmp_path: Path
) -> None:
    with served(fresh_database_url, tmp_path, "--worker", log_level="INFO"):
        with psycopg.connect(libpq_url(fresh_database_url), autocommit=True) as connection:
            while _succeeded(connection, "queue:retry_stalled_jobs") < 2:
                time.sleep(0.5)
    console = (tmp_path / "serve.log").read_text()
    assert "Uvicorn running" in console
    assert "retry_stalled_jobs" not in console
    assert "Registering task" not in console


def _succeeded(connection: psycopg.Connection[tuple[object, ...]], task: str) -> int:
    row = connection.execute(
        "SELECT count(*) FROM procrastinate_jobs WHERE task_name = %s AND status = 'succeeded'",
        (task,),
    ).fetchone()
    return int(row[0]) if row and isinstance(row[0], int) else 0


def _alive_workers(connection: psycopg.Connection[tuple[object, ...]]) -> int:
    row = connection.execute("SELECT count(*) FROM procrastinate_workers").fetchone()
    return int(row[0]) if row and isinstance(row[0], int) else 0


def _api_processes(parent: int) -> list[str]:
    """The ``multiprocessing`` children uvicorn spawned for the API."""
    children = subprocess.run(
        ["ps", "-ww", "-o", "pid=,args=", "--ppid", str(parent)], capture_output=True, text=True
    ).stdout.splitlines()
    return [line for line in children if "spawn_main" in line]
