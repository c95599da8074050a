from __future__ import annotations

import json

import pytest

from keybuzz.config import get_settings
from tests.cli_helpers import run_cli


def test_config_shows_the_effective_values_with_the_password_masked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KEYBUZZ_DATABASE_URL", "postgresql://app:s3cr3t-pw@db.internal:5432/kb")
    monkeypatch.setenv("KEYBUZZ_PORT", "9001")
    get_settings.cache_clear()

    result = run_cli("config")
    get_settings.cache_clear()

    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["port"] == 9001
    assert shown["database_url"] == "postgresql://app:********@db.internal:5432/kb"
    assert "s3cr3t-pw" not in result.output


def test_an_invalid_setting_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYBUZZ_PORT", "not-a-port")
    get_settings.cache_clear()

    result = run_cli("config")
    get_settings.cache_clear()

    assert result.exit_code == 2
    assert "Invalid configuration: KEYBUZZ_PORT: Input should be a valid integer" in result.output
