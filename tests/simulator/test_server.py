"""Running the simulator: in-process (sync and async), and alone with ``keybuzz simulator``."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any

import httpx
import pytest

from keybuzz.simulator import SimulatorServer, SimulatorSettings
from keybuzz.simulator.spec import MODEL_FILES, MODEL_SHA256, all_operations, model_path


def simulator_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("sp-api-simulator-")]


def test_server_starts_on_a_free_loopback_port_and_stops_cleanly() -> None:
    running_before = len(simulator_threads())

    with SimulatorServer(SimulatorSettings(orders=10)) as server:
        assert server.base_url.startswith("http://127.0.0.1:")
        assert httpx.get(f"{server.base_url}/_sim").status_code == 200
        port = server.port

    assert len(simulator_threads()) == running_before
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/_sim")


async def test_server_works_with_async_with() -> None:
    async with SimulatorServer(SimulatorSettings(orders=10)) as server:
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            response = await client.get("/_sim")

    assert response.status_code == 200


def test_vendored_models_are_the_official_ones() -> None:
    for name in MODEL_FILES:
        digest = hashlib.sha256(model_path(name).read_bytes()).hexdigest()
        assert digest == MODEL_SHA256[name], name


def test_usage_plans_come_from_the_models() -> None:
    plans = {
        (op.model_file, op.operation_id): (op.usage_plan.rate, op.usage_plan.burst)
        for op in all_operations()
    }

    assert plans["orders_2026-01-01.json", "searchOrders"] == (0.0056, 20)
    assert plans["ordersV0.json", "getOrders"] == (0.0167, 20)
    assert plans["ordersV0.json", "getOrderItems"] == (0.5, 30)
    assert plans["reports_2021-06-30.json", "createReport"] == (0.0167, 15)
    assert plans["reports_2021-06-30.json", "getReport"] == (2.0, 15)
    assert plans["sellers.json", "getMarketplaceParticipations"] == (0.016, 15)
    assert plans["tokens_2021-03-01.json", "createRestrictedDataToken"] == (1.0, 10)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.slow
def test_keybuzz_simulator_command_runs_it_alone() -> None:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "keybuzz.cli",
        "simulator",
        "--port",
        str(port),
        "--orders",
        "25",
        "--seed",
        "3",
        "--rate-scale",
        "10",
    ]
    env = {**os.environ, "COLUMNS": "200"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    try:
        overview = wait_for_overview(process, f"http://127.0.0.1:{port}")
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        output = process.communicate()[0].decode()

    assert overview is not None, f"keybuzz simulator exited before serving:\n{output}"
    assert overview["rate_scale"] == 10
    assert overview["sellers"][0]["orders"] == 25
    assert f"http://127.0.0.1:{port}" in output
    assert "amzn1.application-oa2-client.keybuzzsim" in output
    assert "Atzr|" in output


def wait_for_overview(process: subprocess.Popen[bytes], base_url: str) -> dict[str, Any] | None:
    """The simulator's overview once it serves; ``None`` if its process ended first. No deadline:
    a slow machine makes this slow, never failed (pytest-timeout stops a hang)."""
    while process.poll() is None:
        try:
            body: dict[str, Any] = httpx.get(f"{base_url}/_sim", timeout=1).json()
            return body
        except httpx.TransportError:  # not listening yet, or slow to answer: ask again
            time.sleep(0.05)
    return None
