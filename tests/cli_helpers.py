from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from typer.testing import CliRunner, Result

from keybuzz.cli import app
from keybuzz.config import get_settings


@contextmanager
def database_env(monkeypatch: pytest.MonkeyPatch, url: str) -> Iterator[None]:
    monkeypatch.setenv("KEYBUZZ_DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        yield
    finally:
        get_settings.cache_clear()


def run_cli(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(app, list(args), input=input)
