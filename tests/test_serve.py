from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_keybuzz_serve_migrates_and_answers(fresh_database_url: str) -> None:
    port = _free_port()
    env = {**os.environ, "KEYBUZZ_DATABASE_URL": fresh_database_url, "KEYBUZZ_LOG_LEVEL": "WARNING"}
    server = subprocess.Popen(
        [sys.executable, "-m", "keybuzz.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        ready = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and ready is None:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1)
            except httpx.TransportError:
                time.sleep(0.2)
        assert ready is not None, "the service did not start"
        assert ready.json() == {"status": "ready"}
        unauthenticated = httpx.get(f"http://127.0.0.1:{port}/api/v1/orders")
        assert unauthenticated.status_code == 401
        assert unauthenticated.headers["content-type"] == "application/problem+json"
    finally:
        server.terminate()
        server.wait(timeout=30)
