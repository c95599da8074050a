"""These tests talk to Amazon, played by the simulator: the app's settings point at it."""

from __future__ import annotations

from pathlib import Path

import pytest

from keybuzz.config import Settings
from keybuzz.simulator.server import SimulatorServer
from tests.fixtures.amazon import amazon_settings


@pytest.fixture
def settings(tmp_path: Path, amazon: SimulatorServer) -> Settings:
    return amazon_settings(tmp_path / ".keybuzz", amazon)
