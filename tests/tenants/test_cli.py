from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cli_helpers import database_env, run_cli


@pytest.fixture
def cli_database(monkeypatch: pytest.MonkeyPatch, fresh_database_url: str) -> Iterator[str]:
    with database_env(monkeypatch, fresh_database_url):
        yield fresh_database_url


def test_create_prints_a_key_once_and_list_shows_the_tenant(cli_database: str) -> None:
    created = run_cli("tenants", "create", "ecomlg-001", "--name", "Ecom LG")
    listed = run_cli("tenants", "list")

    assert created.exit_code == 0, created.output
    key = created.output.strip().splitlines()[-1]
    assert key.startswith("kb_")
    assert len(key) > 40
    assert "ecomlg-001" in listed.output
    assert "Ecom LG" in listed.output
    assert key not in listed.output


def test_creating_a_tenant_twice_is_a_clear_error(cli_database: str) -> None:
    run_cli("tenants", "create", "ecomlg-001")

    again = run_cli("tenants", "create", "ecomlg-001")

    assert again.exit_code != 0
    assert again.exit_code == 2
    assert "Error: Tenant ecomlg-001 already exists." in again.output


def test_an_invalid_tenant_id_is_refused(cli_database: str) -> None:
    result = run_cli("tenants", "create", "Bad Tenant!")

    assert result.exit_code != 0
    assert result.exit_code == 2
    assert "lowercase letters" in result.output
