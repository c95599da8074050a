from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from keybuzz.db import create_engine, create_sessionmaker, transaction
from keybuzz.orders.service import count_orders, upsert_orders
from keybuzz.tenants.models import TenantId
from tests.cli_helpers import database_env, run_cli
from tests.factories import order_record


def _seed(url: str, tenant: str, amazon: int, other: int) -> None:
    async def main() -> None:
        engine = create_engine(url, pool_size=1)
        async with transaction(create_sessionmaker(engine)) as session:
            records = [order_record() for _ in range(amazon)]
            records += [order_record(marketplace="cdiscount") for _ in range(other)]
            await upsert_orders(session, TenantId(tenant), records)
        await engine.dispose()

    asyncio.run(main())


def _count(url: str, tenant: str) -> int:
    async def main() -> int:
        engine = create_engine(url, pool_size=1)
        async with transaction(create_sessionmaker(engine)) as session:
            count = await count_orders(session, TenantId(tenant))
        await engine.dispose()
        return count

    return asyncio.run(main())


@pytest.fixture
def seeded(monkeypatch: pytest.MonkeyPatch, fresh_database_url: str) -> Iterator[str]:
    with database_env(monkeypatch, fresh_database_url):
        assert run_cli("tenants", "create", "ecomlg-001").exit_code == 0
        _seed(fresh_database_url, "ecomlg-001", amazon=4, other=2)
        yield fresh_database_url


def test_purge_shows_the_count_and_asks_first(seeded: str) -> None:
    declined = run_cli("orders", "purge", "--tenant", "ecomlg-001", input="n\n")

    assert "has 6 orders" in declined.output
    assert declined.exit_code == 1
    assert _count(seeded, "ecomlg-001") == 6


def test_purge_of_one_marketplace_with_yes(seeded: str) -> None:
    result = run_cli(
        "orders", "purge", "--tenant", "ecomlg-001", "--marketplace", "amazon", "--yes"
    )

    assert result.exit_code == 0, result.output
    assert "Deleted 4 orders" in result.output
    assert _count(seeded, "ecomlg-001") == 2


def test_purge_of_an_unknown_tenant_is_a_clear_error(seeded: str) -> None:
    result = run_cli("orders", "purge", "--tenant", "nobody-here", "--yes")

    assert result.exit_code != 0
    assert result.exit_code == 2
    assert "No tenant nobody-here" in result.output
