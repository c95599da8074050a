"""`keybuzz connections check` and the hourly job: a dead connection is flagged before use."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text

from keybuzz.db import transaction
from keybuzz.jobs import create_job_app
from keybuzz.marketplaces.checks import check_all
from keybuzz.runtime import open_runtime
from keybuzz.simulator.server import SimulatorServer
from keybuzz.worker import job_groups
from tests.cli_helpers import database_env, run_cli
from tests.factories import make_tenant
from tests.fixtures.amazon import SELLER, amazon_settings, connect
from tests.fixtures.apps import api_client


async def _connected_tenants(url: str, data_dir: Path, amazon: SimulatorServer) -> None:
    settings = amazon_settings(data_dir, amazon)
    async with open_runtime(settings, database_url=url) as runtime:
        async with transaction(runtime.privileged_sessionmaker) as session:
            healthy = await make_tenant(session, "healthy-001")
            broken = await make_tenant(session, "broken-002")
        async with api_client(runtime, None) as client:
            assert (await connect(client, healthy)).status_code == 303
            await client.delete("/api/v1/marketplaces/amazon", headers=healthy.headers)
            assert (await connect(client, broken)).status_code == 303
            assert (await connect(client, healthy)).status_code == 409
        async with transaction(runtime.privileged_sessionmaker) as session:
            await session.execute(
                text("DELETE FROM tenant_secrets WHERE tenant_id = :t"), {"t": broken.id}
            )


def test_connections_check_flags_a_connection_whose_secret_vanished(
    fresh_database_url: str,
    amazon: SimulatorServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asyncio.run(_connected_tenants(fresh_database_url, tmp_path, amazon))
    for name, value in {
        "KEYBUZZ_DATA_DIR": str(tmp_path),
        "KEYBUZZ_SPAPI_ENDPOINT": amazon.base_url,
        "KEYBUZZ_LWA_TOKEN_URL": f"{amazon.base_url}/auth/o2/token",
        "KEYBUZZ_SELLER_CENTRAL_URL": amazon.base_url,
    }.items():
        monkeypatch.setenv(name, value)

    with database_env(monkeypatch, fresh_database_url):
        result = run_cli("connections", "check", "--tenant", "broken-002")

    assert result.exit_code == 0, result.output
    assert "broken-002" in result.output
    assert "NEEDS_RECONNECT" in result.output


async def test_the_hourly_job_checks_every_connection(
    fresh_database_url: str, amazon: SimulatorServer, tmp_path: Path
) -> None:
    await _connected_tenants(fresh_database_url, tmp_path, amazon)
    amazon.simulator.revoke(SELLER)

    settings = amazon_settings(tmp_path, amazon)
    async with open_runtime(settings, database_url=fresh_database_url) as runtime:
        results = dict(await check_all(runtime))

    broken, healthy = results["broken-002"], results["healthy-001"]
    assert broken is not None
    assert broken.status.value == "NEEDS_RECONNECT"
    assert healthy is not None
    assert healthy.status.value == "PENDING"  # its second consent was refused


def test_the_check_is_scheduled_every_hour() -> None:
    app = create_job_app("postgresql://postgres@127.0.0.1/postgres", job_groups())

    crons = {p.task.name: p.cron for p in app.periodic_registry.periodic_tasks.values()}

    assert crons["marketplaces:check_connections"] == "17 * * * *"


def test_expired_consent_states_are_purged_every_ten_minutes() -> None:
    app = create_job_app("postgresql://postgres@127.0.0.1/postgres", job_groups())

    crons = {p.task.name: p.cron for p in app.periodic_registry.periodic_tasks.values()}

    assert crons["marketplaces:purge_oauth_states"] == "*/10 * * * *"
