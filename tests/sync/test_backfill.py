"""Backfills: refused on a dead connection, queued with their job atomically, run by a worker."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from keybuzz.db import transaction
from keybuzz.orders.models import Order
from keybuzz.simulator.server import SimulatorServer
from keybuzz.sync.schemas import BackfillRequest
from keybuzz.sync.service import request_backfill
from keybuzz.worker import run_worker
from tests.factories import TenantCredentials
from tests.fixtures.amazon import SELLER, START, Deployed, connect, connection_of

BACKFILL = "/api/v1/orders/backfill"

pytestmark = pytest.mark.amazon


async def test_backfill_without_a_connection_says_how_to_connect(
    client: httpx.AsyncClient, tenant: TenantCredentials
) -> None:
    response = await client.post(BACKFILL, json={"days": 90}, headers=tenant.headers)

    assert response.status_code == 409
    problem = response.json()
    assert problem["code"] == "amazon_not_connected"
    assert START in problem["detail"]
    assert problem["action"] == {
        "kind": "connect",
        "message": problem["action"]["message"],
        "method": "POST",
        "href": START,
    }


async def test_backfill_while_consent_is_pending_is_not_connected(
    client: httpx.AsyncClient, tenant: TenantCredentials
) -> None:
    await client.post(START, json={"region": "EU"}, headers=tenant.headers)

    response = await client.post(BACKFILL, headers=tenant.headers)

    assert response.json()["code"] == "amazon_not_connected"


async def test_a_backfill_is_queued_with_its_job_in_one_transaction(
    client: httpx.AsyncClient, session: AsyncSession, tenant: TenantCredentials
) -> None:
    await connect(client, tenant)

    first = await client.post(BACKFILL, json={"days": 30}, headers=tenant.headers)
    again = await client.post(BACKFILL, json={"days": 30}, headers=tenant.headers)

    assert first.status_code == 202
    job = first.json()
    assert job["status"] == "QUEUED"
    assert job["days"] == 30
    assert again.status_code == 200
    assert again.json()["id"] == job["id"]
    queued = await session.execute(
        text(
            "SELECT task_name, lock, status FROM procrastinate_jobs "
            "WHERE args->>'backfill_job_id' = :id"
        ),
        {"id": job["id"]},
    )
    assert queued.all() == [("sync:backfill_orders", f"sync:{tenant.id}:amazon", "todo")]


@pytest.mark.parametrize("body", [{"days": 0}, {"days": 731}, {"marketplace": "ebay"}, {"x": 1}])
async def test_invalid_backfill_requests_name_the_field(
    client: httpx.AsyncClient, tenant: TenantCredentials, body: dict[str, Any]
) -> None:
    response = await client.post(BACKFILL, json=body, headers=tenant.headers)

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] in body


async def test_a_rolled_back_request_leaves_no_job_behind(deployed: Deployed) -> None:
    runtime = deployed.runtime
    tenant = await deployed.tenant()
    async with runtime.sessionmaker() as session:
        store = runtime.secrets.store(session)
        await request_backfill(
            session, runtime.amazon, store, runtime.jobs, tenant.id, BackfillRequest()
        )
        await session.rollback()
    async with runtime.sessionmaker() as session:
        jobs = await session.scalar(text("SELECT count(*) FROM procrastinate_jobs"))
        rows = await session.scalar(
            text("SELECT count(*) FROM backfill_jobs WHERE tenant_id = :t"), {"t": tenant.id}
        )

    assert (jobs, rows) == (0, 0)


async def test_a_worker_imports_every_order_amazon_holds(
    deployed: Deployed, amazon: SimulatorServer
) -> None:
    client, tenant = deployed.client, await deployed.tenant()
    queued = (await client.post(BACKFILL, json={"days": 90}, headers=tenant.headers)).json()
    truth = _orders_amazon_lists(amazon, queued)

    await run_worker(deployed.runtime, wait=False, install_signals=False)

    job = (await client.get(f"{BACKFILL}/{queued['id']}", headers=tenant.headers)).json()
    connection = await connection_of(client, tenant)
    async with transaction(deployed.runtime.sessionmaker) as session:
        stored = set(
            await session.scalars(
                select(Order.external_order_id).where(Order.tenant_id == tenant.id)
            )
        )
    assert job["status"] == "SUCCEEDED"
    assert job["ordersFetched"] == len(truth)
    assert stored == truth
    assert connection["status"] == "CONNECTED"
    assert connection["lastSyncAt"] is not None


def _orders_amazon_lists(amazon: SimulatorServer, job: dict[str, Any]) -> set[str]:
    """Amazon's orders created inside the job's window (the newest two minutes are not listed)."""
    start = dt.datetime.fromisoformat(job["windowStart"])
    end = dt.datetime.fromisoformat(job["windowEnd"])
    return {
        order["orderId"]
        for order in amazon.simulator.ground_truth(SELLER)["orders"]
        if start <= dt.datetime.fromisoformat(order["createdTime"]) < end
    }


async def test_another_tenants_backfill_is_not_found(
    client: httpx.AsyncClient, tenant: TenantCredentials, other_tenant: TenantCredentials
) -> None:
    await connect(client, tenant)
    job = (await client.post(BACKFILL, headers=tenant.headers)).json()

    response = await client.get(f"{BACKFILL}/{job['id']}", headers=other_tenant.headers)
    listed = await client.get(BACKFILL, headers=other_tenant.headers)

    assert response.status_code == 404
    assert listed.json() == {"items": []}
