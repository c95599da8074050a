"""`keybuzz demo` (what `make run` starts): the tenant waits for its seller to connect Amazon,
or `--auto` connects and imports through the API; a second start keeps everything.

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


def _start_demo(
    env: dict[str, str], log: Path, port: int, *options: str
) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "keybuzz.cli", "demo", "--port", str(port), *options]
    with log.open("w") as output:
        return subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)


def _demo_env(tmp_path: Path, database_url: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYBUZZ_")}
    env["KEYBUZZ_DATA_DIR"] = str(tmp_path / "state")
    if database_url is not None:
        env["KEYBUZZ_DATABASE_URL"] = database_url
    return env


@pytest.mark.slow
def test_the_demo_waits_for_the_seller_to_connect_amazon(
    fresh_database_url: str, tmp_path: Path
) -> None:
    port = _free_port()
    log = tmp_path / "demo.log"
    demo = _start_demo(_demo_env(tmp_path, fresh_database_url), log, port, "--orders", "20")
    try:
        key = _wait_for_key(demo, log)
        headers = {"Authorization": f"Bearer {key}", "X-Tenant-Id": "ecomlg-001"}
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=None
        ) as api:
            connections = api.get("/api/v1/marketplaces").json()["items"]
            backfills = api.get("/api/v1/orders/backfill").json()["items"]
            page = api.get("/orders")
    finally:
        demo.terminate()
        demo.wait()

    assert connections == []
    assert backfills == []
    assert page.status_code == 200
    assert 'name="apiKey"' in page.text
    assert f"http://127.0.0.1:{port}/orders" in log.read_text()


@pytest.mark.slow
def test_the_demo_auto_imports_and_keeps_everything_when_started_again(
    fresh_database_url: str, tmp_path: Path
) -> None:
    port = _free_port()
    env = _demo_env(tmp_path, fresh_database_url)
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    demo = _start_demo(env, first_log, port, "--orders", "120", "--auto")
    try:
        key = _wait_for_key(demo, first_log)
        headers = {"Authorization": f"Bearer {key}", "X-Tenant-Id": "ecomlg-001"}
        # No request timeout either: an answer slowed by a busy machine is waited for.
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=None
        ) as api:
            job = _wait_for_backfill(demo, first_log, api)
            orders = api.get("/api/v1/orders", params={"limit": 200})
            connection = api.get("/api/v1/marketplaces").json()["items"]
    finally:
        demo.send_signal(signal.SIGINT)
        demo.wait()

    assert job["status"] == "SUCCEEDED", job
    assert connection[0]["status"] == "CONNECTED"
    items = orders.json()["items"]
    assert 100 <= len(items) <= 120
    assert len(items) == job["ordersFetched"]
    assert all(order["items"] for order in items if order["orderStatus"] != "PENDING")
    assert "Atzr|" not in first_log.read_text()

    again = _start_demo(env, second_log, port, "--orders", "120")
    try:
        new_key = _wait_for_key(again, second_log)
        headers = {"Authorization": f"Bearer {new_key}", "X-Tenant-Id": "ecomlg-001"}
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=None
        ) as api:
            kept = api.get("/api/v1/orders", params={"limit": 200}).json()["items"]
            checked = api.post("/api/v1/marketplaces/amazon/check").json()
    finally:
        again.send_signal(signal.SIGINT)
        again.wait()

    assert new_key != key
    assert {order["id"] for order in kept} >= {order["id"] for order in items}
    assert checked["status"] == "CONNECTED", checked  # the new simulator honours the consent


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_the_demo_stops_everything_it_started_on_ctrl_c_or_sigterm(
    tmp_path: Path, stop: signal.Signals
) -> None:
    state = tmp_path / "state"  # the embedded PostgreSQL server, in state/pgdata
    log = tmp_path / "demo.log"
    demo = _start_demo(_demo_env(tmp_path), log, _free_port(), "--orders", "20")
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
