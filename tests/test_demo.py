"""`keybuzz demo` (what `make run` starts): a connected tenant with real orders, via the API.

Each wait is for a condition (the key printed, the backfill finished) while the demo lives, with
no deadline: a slow machine makes it slow, never failed; pytest-timeout stops a hang.
"""

from __future__ import annotations

import os
import re
import signal
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


def _alive(demo: subprocess.Popen[bytes], log: Path) -> None:
    if demo.poll() is not None:
        pytest.fail(f"the demo exited with {demo.returncode}:\n{log.read_text()[-3000:]}")


def _wait_for_key(demo: subprocess.Popen[bytes], log: Path) -> str:
    while True:
        found = re.search(r"export KB_KEY=(kb_\S+)", log.read_text())
        if found:
            return found.group(1)
        _alive(demo, log)
        time.sleep(0.2)


def _wait_for_backfill(
    demo: subprocess.Popen[bytes], log: Path, api: httpx.Client
) -> dict[str, object]:
    """The demo's backfill, once it has ended (SUCCEEDED, FAILED or CANCELLED)."""
    while True:
        [job] = api.get("/api/v1/orders/backfill").json()["items"]
        if job["status"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
            return dict(job)
        _alive(demo, log)
        time.sleep(0.2)


@pytest.mark.slow
def test_the_demo_serves_orders_imported_from_the_simulator(
    fresh_database_url: str, tmp_path: Path
) -> None:
    port = _free_port()
    log = tmp_path / "demo.log"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("KEYBUZZ_")},
        "KEYBUZZ_DATABASE_URL": fresh_database_url,
        "KEYBUZZ_DATA_DIR": str(tmp_path / "state"),
    }
    command = [sys.executable, "-m", "keybuzz.cli", "demo", "--port", str(port), "--orders", "120"]
    with log.open("w") as output:
        demo = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        key = _wait_for_key(demo, log)
        headers = {"Authorization": f"Bearer {key}", "X-Tenant-Id": "ecomlg-001"}
        # No request timeout either: an answer slowed by a busy machine is waited for.
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=None
        ) as api:
            job = _wait_for_backfill(demo, log, api)
            orders = api.get("/api/v1/orders", params={"limit": 200})
            connection = api.get("/api/v1/marketplaces").json()["items"]
    finally:
        demo.terminate()
        demo.wait()

    assert job["status"] == "SUCCEEDED", job
    assert connection[0]["status"] == "CONNECTED"
    items = orders.json()["items"]
    assert 100 <= len(items) <= 120
    assert len(items) == job["ordersFetched"]
    assert all(order["items"] for order in items if order["orderStatus"] != "PENDING")
    assert "Atzr|" not in log.read_text()


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_the_demo_stops_everything_it_started_on_ctrl_c_or_sigterm(
    tmp_path: Path, stop: signal.Signals
) -> None:
    state = tmp_path / "state"
    log = tmp_path / "demo.log"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("KEYBUZZ_")},
        "KEYBUZZ_DATA_DIR": str(state),  # the embedded PostgreSQL server, in state/pgdata
    }
    port = str(_free_port())
    command = [sys.executable, "-m", "keybuzz.cli", "demo", "--port", port, "--orders", "20"]
    with log.open("w") as output:
        demo = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        _wait_for_key(demo, log)
        postmaster = state / "pgdata" / "postmaster.pid"
        server_pid = int(postmaster.read_text().splitlines()[0])

        demo.send_signal(stop)
        demo.wait()
    finally:
        demo.kill()

    assert not postmaster.exists(), log.read_text()[-3000:]
    assert _ends(server_pid), "the embedded PostgreSQL server outlived the demo"
    assert "Logging error" not in log.read_text()


def _ends(pid: int) -> bool:
    """Whether the process ends (its pid file goes just before it does); a minute at most."""
    for _ in range(600):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False
