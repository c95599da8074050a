"""Backfills: refused on a dead connection, queued with their job atomically, run by a worker."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from keybuzz.amazon.retry import RetryPolicy
from keybuzz.db import transaction
from keybuzz.jobs import create_job_app
from keybuzz.marketplaces import tasks as marketplace_tasks
from keybuzz.orders.models import Order
from keybuzz.runtime import Runtime, engine_url
from keybuzz.simulator import FaultSettings
from keybuzz.simulator.server import SimulatorServer
from keybuzz.sync import backfill as backfill_service
from keybuzz.sync import tasks as sync_tasks
from keybuzz.sync.schemas import BackfillRequest
from keybuzz.sync.service import request_backfill
from keybuzz.sync.tasks import BACKFILL_RETRY
from tests.factories import TenantCredentials
from tests.fixtures.amazon import SELLER, START, Deployed, connect, connection_of

BACKFILL = "/api/v1/orders/backfill"
# Two tries a request: a failing backfill stays within each operation's burst.
QUICK_REQUESTS = RetryPolicy(attempts=2, base_delay=0.001, max_delay=0.001)

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
            "SELECT task_name, queueing_lock, status FROM procrastinate_jobs "
            "WHERE args->>'backfill_job_id' = :id"
        ),
        {"id": job["id"]},
    )
    assert queued.all() == [("sync:backfill_orders", f"backfill:{tenant.id}:amazon", "todo")]


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
    async with runtime.privileged_sessionmaker() as session:
        store = runtime.secrets.store(session)
        await request_backfill(
            session, runtime.amazon, store, runtime.jobs, tenant.id, BackfillRequest()
        )
        await session.rollback()
    async with runtime.privileged_sessionmaker() as session:
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

    await deployed.run_jobs(until=lambda: deployed.backfill_over(tenant, queued["id"]))

    job = (await client.get(f"{BACKFILL}/{queued['id']}", headers=tenant.headers)).json()
    connection = await connection_of(client, tenant)
    async with transaction(deployed.runtime.privileged_sessionmaker) as session:
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


async def test_a_backfill_amazon_keeps_failing_ends_failed_and_frees_the_way(
    deployed: Deployed, amazon: SimulatorServer
) -> None:
    client, tenant = deployed.client, await deployed.tenant()
    # One report slice: 2 calls an attempt, 14 in all, within createReport's burst of 15.
    queued = (await client.post(BACKFILL, json={"days": 10}, headers=tenant.headers)).json()
    amazon.simulator.set_faults(FaultSettings(error_rate=1.0))

    await deployed.run_jobs(
        until=lambda: deployed.backfill_over(tenant, queued["id"]),
        runtime=_with_waits_configured_down(deployed.runtime),
    )

    job = (await client.get(f"{BACKFILL}/{queued['id']}", headers=tenant.headers)).json()
    runs, left_queued = await _queue_state(deployed.runtime, queued["id"])
    again = await client.post(BACKFILL, headers=tenant.headers)
    assert job["status"] == "FAILED"
    assert job["errorCode"] == "amazon_unavailable"
    assert re.search(r"\w+\.\w+: HTTP 50[03] after \d+ tries", job["errorMessage"])
    assert f"gave up after {BACKFILL_RETRY.attempts} attempts" in job["errorMessage"]
    assert job["finishedAt"] is not None
    assert runs == BACKFILL_RETRY.attempts
    assert left_queued == 0
    assert again.status_code == 202
    assert again.json()["id"] != queued["id"]


def test_the_backfill_retry_policy_ends_within_the_hour_the_docs_state() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "connections.md").read_text()
    waits = ", ".join(_duration(wait) for wait in BACKFILL_RETRY.waits)

    assert all(1 <= wait <= 15 * 60 for wait in BACKFILL_RETRY.waits)
    assert BACKFILL_RETRY.total_wait <= dt.timedelta(hours=1)
    assert f"{BACKFILL_RETRY.attempts} attempts" in docs
    assert waits in docs


async def test_a_backfill_refused_for_good_is_not_retried(
    deployed: Deployed, amazon: SimulatorServer
) -> None:
    client, tenant = deployed.client, await deployed.tenant()
    queued = (await client.post(BACKFILL, headers=tenant.headers)).json()
    amazon.simulator.revoke(SELLER)

    await deployed.run_jobs(until=lambda: deployed.backfill_over(tenant, queued["id"]))

    job = (await client.get(f"{BACKFILL}/{queued['id']}", headers=tenant.headers)).json()
    runs, left_queued = await _queue_state(deployed.runtime, queued["id"])
    connection = await connection_of(client, tenant)
    assert (job["status"], job["errorCode"]) == ("FAILED", "amazon_reconnect_required")
    assert (runs, left_queued) == (1, 0)
    assert connection["status"] == "NEEDS_RECONNECT"


def _with_waits_configured_down(runtime: Runtime) -> Runtime:
    """The same runtime, its retry waits (the job's and each request's) made instant."""
    no_wait = dataclasses.replace(BACKFILL_RETRY, waits=(0,) * len(BACKFILL_RETRY.waits))
    groups = [sync_tasks.job_group(retry=no_wait), marketplace_tasks.job_group()]
    return dataclasses.replace(
        runtime,
        amazon=dataclasses.replace(runtime.amazon, retry=QUICK_REQUESTS),
        jobs=create_job_app(engine_url(runtime.engine), groups),
    )


async def _queue_state(runtime: Runtime, backfill_id: str) -> tuple[int, int]:
    """How often the backfill's job ran, and how many of its jobs are still queued."""
    async with runtime.privileged_sessionmaker() as session:
        row = (
            await session.execute(
                text(
                    "SELECT max(attempts), count(*) FILTER (WHERE status = 'todo') "
                    "FROM procrastinate_jobs WHERE args->>'backfill_job_id' = :id"
                ),
                {"id": backfill_id},
            )
        ).one()
    return int(row[0]), int(row[1])


def _duration(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


async def test_an_order_in_the_second_two_reports_share_is_stored_and_counted_once(
    deployed: Deployed, amazon: SimulatorServer
) -> None:
    client, tenant = deployed.client, await deployed.tenant()
    queued = (await client.post(BACKFILL, json={"days": 90}, headers=tenant.headers)).json()
    # The window is read in 30-day reports, each asked for by the second, both ends included:
    # an order of the very second where one report ends and the next begins is in both.
    start = dt.datetime.fromisoformat(queued["windowStart"])
    cuts = [int((start + dt.timedelta(days=30 * n)).timestamp()) for n in (1, 2)]
    with amazon.simulator.lock:
        seller = amazon.simulator.sellers[SELLER]
        for cut in cuts:
            seller.book.add(seller.generator.generate(1, cut, cut + 1))
    truth = _orders_amazon_lists(amazon, queued)

    await deployed.run_jobs(until=lambda: deployed.backfill_over(tenant, queued["id"]))

    job = (await client.get(f"{BACKFILL}/{queued['id']}", headers=tenant.headers)).json()
    assert job["status"] == "SUCCEEDED"
    assert job["ordersStored"] == job["ordersEnriched"] == len(truth)


async def test_the_enrichment_counts_what_it_has_left_at_most_every_few_seconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Progress and ETA after each page come from the last count less the pages enriched
    since; the orders left are counted again once ``RECOUNT_SECONDS`` have passed."""
    counts: list[dt.datetime] = []
    left_in_database = [1000]
    clock = [100.0]

    async def count_to_enrich(*args: Any) -> int:
        counts.append(args[-1])
        return left_in_database[0]

    monkeypatch.setattr(backfill_service.repository, "count_to_enrich", count_to_enrich)
    monkeypatch.setattr(backfill_service, "monotonic", lambda: clock[0])
    start = dt.datetime(2026, 9, 1, tzinfo=dt.UTC)
    job = SimpleNamespace(tenant_id="t-1", marketplace="amazon", window_start=start)
    run: Any = SimpleNamespace(job=job, tenant_id="t-1", left_to_enrich=None)
    top = start + dt.timedelta(days=90)

    first = await backfill_service._orders_left(cast(AsyncSession, None), run, top)
    run.left_to_enrich.enriched(100)  # a page stored
    clock[0] += backfill_service.RECOUNT_SECONDS / 2
    between = await backfill_service._orders_left(cast(AsyncSession, None), run, top)
    run.left_to_enrich.enriched(2000)  # never below nothing left
    soon_after = await backfill_service._orders_left(cast(AsyncSession, None), run, top)
    left_in_database[0] = 850  # a sync enriched some meanwhile
    clock[0] += backfill_service.RECOUNT_SECONDS
    recounted = await backfill_service._orders_left(cast(AsyncSession, None), run, top)

    assert (first, between, soon_after, recounted) == (1000, 900, 0, 850)
    assert counts == [top, top]
