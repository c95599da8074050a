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
from pathlib import Path

import httpx
import pytest


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


@pytest.mark.slow
def test_keybuzz_serve_migrates_and_answers(fresh_database_url: str, tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "KEYBUZZ_DATABASE_URL": fresh_database_url, "KEYBUZZ_LOG_LEVEL": "WARNING"}
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "keybuzz.cli", "serve", "--port", str(port)],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        ready = _wait_until_ready(server, log, f"http://127.0.0.1:{port}/readyz")
        assert ready.json() == {"status": "ready"}
        unauthenticated = httpx.get(f"http://127.0.0.1:{port}/api/v1/orders", timeout=None)
        assert unauthenticated.status_code == 401
        assert unauthenticated.headers["content-type"] == "application/problem+json"
    finally:
        server.terminate()
        server.wait()
