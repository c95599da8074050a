"""`keybuzz demo` (what `make run` starts): a connected tenant with real orders, via the API."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for_key(log: Path, deadline: float) -> str:
    while time.monotonic() < deadline:
        found = re.search(r"export KB_KEY=(kb_\S+)", log.read_text())
        if found:
            return found.group(1)
        time.sleep(0.2)
    raise AssertionError(f"the demo printed no API key:\n{log.read_text()[-3000:]}")


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
        key = _wait_for_key(log, time.monotonic() + 90)
        headers = {"Authorization": f"Bearer {key}", "X-Tenant-Id": "ecomlg-001"}
        base = f"http://127.0.0.1:{port}"
        job: dict[str, object] = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and job.get("status") != "SUCCEEDED":
            [job] = httpx.get(f"{base}/api/v1/orders/backfill", headers=headers).json()["items"]
            time.sleep(0.2)
        orders = httpx.get(f"{base}/api/v1/orders", headers=headers, params={"limit": 200})
        connection = httpx.get(f"{base}/api/v1/marketplaces", headers=headers).json()["items"]
    finally:
        demo.terminate()
        demo.wait(timeout=30)

    assert job["status"] == "SUCCEEDED"
    assert connection[0]["status"] == "CONNECTED"
    items = orders.json()["items"]
    assert 100 <= len(items) <= 120
    assert len(items) == job["ordersFetched"]
    assert all(order["items"] for order in items if order["orderStatus"] != "PENDING")
    assert "Atzr|" not in log.read_text()
