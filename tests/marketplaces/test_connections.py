"""A connection status that never lies, and backfills that refuse to start on a dead one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from keybuzz.orders.service import upsert_orders
from keybuzz.runtime import open_runtime
from keybuzz.simulator.server import SimulatorServer
from keybuzz.sync.models import BackfillJob
from tests.factories import TenantCredentials, make_tenant, order_record
from tests.fixtures.amazon import (
    SELLER,
    START,
    Deployed,
    OnVault,
    amazon_settings,
    connect,
    connection_of,
)
from tests.fixtures.apps import api_client
from tests.fixtures.vault import VaultServer

BACKFILL = "/api/v1/orders/backfill"

pytestmark = pytest.mark.amazon


def _assert_reconnect_problem(response: httpx.Response) -> None:
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "amazon_reconnect_required"
    assert "connect the Amazon account again" in problem["detail"]
    assert problem["action"]["href"] == START
    assert problem["action"]["method"] == "POST"


async def _delete_local_secret(session: AsyncSession, tenant: TenantCredentials) -> None:
    await session.execute(
        text("DELETE FROM tenant_secrets WHERE tenant_id = :tenant"), {"tenant": tenant.id}
    )


async def test_the_replaced_systems_failure_local_store(
    client: httpx.AsyncClient, session: AsyncSession, tenant: TenantCredentials
) -> None:
    """CONNECTED in the database, no refresh token behind it: the backfill must not start."""
    assert (await connect(client, tenant)).status_code == 303
    assert (await connection_of(client, tenant))["status"] == "CONNECTED"
    await _delete_local_secret(session, tenant)

    response = await client.post(BACKFILL, json={"days": 90}, headers=tenant.headers)

    _assert_reconnect_problem(response)
    connection = await connection_of(client, tenant)
    assert connection["status"] == "NEEDS_RECONNECT"
    assert connection["reconnectUrl"] == START
    assert connection["action"]["kind"] == "reconnect"
    jobs = await session.scalar(
        select(func.count()).select_from(BackfillJob).where(BackfillJob.tenant_id == tenant.id)
    )
    assert jobs == 0


async def test_the_replaced_systems_failure_in_vault(
    on_vault: OnVault, vault_server: VaultServer
) -> None:
    client, tenant = on_vault.client, on_vault.tenant
    assert (await connect(client, tenant)).status_code == 303
    vault_server.admin().secrets.kv.v2.delete_metadata_and_all_versions(
        path=on_vault.secret_path, mount_point="secret"
    )

    checked = await client.post("/api/v1/marketplaces/amazon/check", headers=tenant.headers)
    response = await client.post(BACKFILL, headers=tenant.headers)

    assert checked.json()["status"] == "NEEDS_RECONNECT"
    _assert_reconnect_problem(response)


async def test_the_list_never_shows_a_connection_without_its_secret(
    client: httpx.AsyncClient, session: AsyncSession, tenant: TenantCredentials
) -> None:
    await connect(client, tenant)
    await _delete_local_secret(session, tenant)

    connection = await connection_of(client, tenant)

    assert connection["status"] == "NEEDS_RECONNECT"
    assert "connect the Amazon account again" in connection["statusReason"]


async def test_a_token_revoked_at_amazon_flips_the_status_at_first_use(
    client: httpx.AsyncClient, tenant: TenantCredentials, amazon: SimulatorServer
) -> None:
    await connect(client, tenant)
    amazon.simulator.revoke(SELLER)

    response = await client.post(BACKFILL, headers=tenant.headers)

    _assert_reconnect_problem(response)
    connection = await connection_of(client, tenant)
    assert connection["status"] == "NEEDS_RECONNECT"
    assert "revoked" in connection["statusReason"]


async def test_reconnecting_makes_the_connection_usable_again(
    client: httpx.AsyncClient, tenant: TenantCredentials, amazon: SimulatorServer
) -> None:
    await connect(client, tenant)
    amazon.simulator.revoke(SELLER)
    await client.post(BACKFILL, headers=tenant.headers)

    assert (await connect(client, tenant)).status_code == 303
    response = await client.post(BACKFILL, headers=tenant.headers)

    assert response.status_code == 202
    assert (await connection_of(client, tenant))["status"] == "CONNECTED"


async def test_wrong_app_credentials_are_an_operator_error(
    session: AsyncSession, amazon: SimulatorServer, tmp_path: Path, engine: Any
) -> None:
    tenant = await make_tenant(session, "ecomlg-001")
    good = amazon_settings(tmp_path, amazon)
    async with open_runtime(good, engine=engine) as runtime, api_client(runtime, session) as client:
        await connect(client, tenant)
    wrong = amazon_settings(tmp_path, amazon, lwa_client_secret="not-the-secret")
    async with (
        open_runtime(wrong, engine=engine) as runtime,
        api_client(runtime, session) as client,
    ):
        response = await client.post(BACKFILL, headers=tenant.headers)
        connection = await connection_of(client, tenant)

    assert response.status_code == 503
    assert response.json()["code"] == "amazon_unavailable"
    assert connection["status"] == "ERROR"
    assert "KEYBUZZ_LWA_CLIENT_SECRET" in connection["statusReason"]
    assert connection["action"]["kind"] == "contact_support"


async def test_disconnect_forgets_the_secret_and_keeps_the_orders(
    client: httpx.AsyncClient, session: AsyncSession, tenant: TenantCredentials
) -> None:
    await connect(client, tenant)
    await upsert_orders(session, tenant.id, [order_record() for _ in range(3)])

    response = await client.delete("/api/v1/marketplaces/amazon", headers=tenant.headers)
    backfill = await client.post(BACKFILL, headers=tenant.headers)

    assert response.status_code == 200
    assert response.json()["status"] == "DISCONNECTED"
    secrets_left = await session.scalar(
        text("SELECT count(*) FROM tenant_secrets WHERE tenant_id = :t AND ciphertext IS NOT NULL"),
        {"t": tenant.id},
    )
    assert secrets_left == 0
    orders = (await client.get("/api/v1/orders", headers=tenant.headers)).json()["items"]
    assert len(orders) == 3
    assert backfill.json()["code"] == "amazon_not_connected"


async def test_disconnecting_nothing_is_a_404(
    client: httpx.AsyncClient, tenant: TenantCredentials
) -> None:
    response = await client.delete("/api/v1/marketplaces/amazon", headers=tenant.headers)

    assert response.status_code == 404
    assert response.json()["code"] == "connection_not_found"


async def test_a_request_failing_on_a_dead_connection_commits_only_what_that_means(
    deployed: Deployed, amazon: SimulatorServer
) -> None:
    """Without the test's transaction: the request rolls back, the status is recorded apart."""
    client, tenant = deployed.client, await deployed.tenant()
    amazon.simulator.revoke(SELLER)

    response = await client.post(BACKFILL, headers=tenant.headers)

    _assert_reconnect_problem(response)
    connection = await connection_of(client, tenant)
    assert connection["status"] == "NEEDS_RECONNECT"
    assert "revoked" in connection["statusReason"]
    async with deployed.runtime.privileged_sessionmaker() as session:
        jobs = await session.scalar(
            select(func.count()).select_from(BackfillJob).where(BackfillJob.tenant_id == tenant.id)
        )
    assert jobs == 0
