"""The sync engine's backfill end to end against the simulator: it ends with exactly Amazon's
orders, running it again changes nothing, a step that dies between its phases loses nothing,
and a list operation out of quota holds up no page the other could bring."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import update

from keybuzz.amazon.operations import GET_ORDERS, SEARCH_ORDERS
from keybuzz.amazon.ratelimit import BucketSnapshot, BucketState
from keybuzz.db import transaction
from keybuzz.marketplaces.models import MarketplaceConnection
from keybuzz.simulator import SimulatorServer
from keybuzz.sync import backfill as backfill_service
from keybuzz.sync import engine
from keybuzz.sync.engine import Step
from keybuzz.tenants.models import TenantId
from tests.fixtures.amazon import BACKFILL, Deployed
from tests.fixtures.sync import (
    assert_matches_amazon,
    backfill,
    settled_amazon,
    settled_seller,
    stored_orders,
)


@pytest.fixture
def amazon() -> Iterator[SimulatorServer]:
    yield from settled_amazon()


async def test_a_backfill_ends_with_exactly_amazons_orders_and_a_second_changes_nothing(
    deployed: Deployed, amazon: SimulatorServer
) -> None:
    seller = settled_seller(amazon, 5000)
    client, tenant = deployed.client, await deployed.tenant()
    truth = amazon.simulator.ground_truth(seller)["orders"]

    job = await backfill(deployed, tenant, days=90)
    stored = await stored_orders(client, tenant)
    again = await backfill(deployed, tenant, days=90)
    stored_again = await stored_orders(client, tenant)

    assert (job["status"], job["phase"], job["progress"]) == ("SUCCEEDED", "DONE", 1.0)
    assert job["ordersStored"] == job["ordersEnriched"] == len(truth) == 5000
    assert again["ordersEnriched"] == 0  # nothing changed: nothing to ask the APIs again
    assert job["itemsStored"] == sum(len(order["orderItems"]) for order in truth)
    assert job["quarantined"] == 0
    assert_matches_amazon(amazon, seller, stored, truth)
    assert again["status"] == "SUCCEEDED"
    assert [(o["id"], o["updatedAt"]) for o in stored_again] == [
        (o["id"], o["updatedAt"]) for o in stored
    ]


async def test_a_step_that_died_between_its_coverage_and_enrichment_resumes_with_enrichment(
    deployed: Deployed, amazon: SimulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    settled_seller(amazon, 300)
    tenant = await deployed.tenant()
    queued = await deployed.client.post(BACKFILL, json={"days": 90}, headers=tenant.headers)
    job_id = uuid.UUID(queued.json()["id"])
    step = Step(tenant.id, deployed.runtime, lambda: False, _nothing, _nothing)
    start_enrichment = backfill_service.start_enrichment

    async def killed(*args: Any) -> None:
        raise _Killed

    monkeypatch.setattr(backfill_service, "start_enrichment", killed)
    with pytest.raises(_Killed):  # the reports, read to their last chunk; then the step dies
        await _steps_forever(step, tenant.id, job_id)
    monkeypatch.setattr(backfill_service, "start_enrichment", start_enrichment)
    while (job := await deployed.backfill_job(tenant, job_id))["status"] == "RUNNING":
        await engine.backfill_step(step, tenant.id, job_id)

    assert (job["status"], job["phase"]) == ("SUCCEEDED", "DONE")
    assert job["ordersStored"] == job["ordersEnriched"] == 300


async def test_an_operation_out_of_quota_leaves_every_window_to_the_other(
    deployed: Deployed, amazon: SimulatorServer
) -> None:
    """searchOrders' quota is spent for the next quarter of an hour: getOrders brings every
    page, and the backfill ends in its first step rather than wait for searchOrders."""
    settled_seller(amazon, 300)
    tenant = await deployed.tenant()
    queued = await deployed.client.post(BACKFILL, json={"days": 90}, headers=tenant.headers)
    job_id = uuid.UUID(queued.json()["id"])
    spent = BucketState(rate=0.001, burst=SEARCH_ORDERS.plan.burst, tokens=0.0)
    snapshot = BucketSnapshot(as_of=time.time(), buckets={SEARCH_ORDERS.name: spent})
    async with transaction(deployed.runtime.privileged_sessionmaker) as session:
        await session.execute(
            update(MarketplaceConnection)
            .where(MarketplaceConnection.tenant_id == tenant.id)
            .values(quota_state=snapshot.model_dump(mode="json"))
        )
    step = Step(tenant.id, deployed.runtime, lambda: False, _nothing, _nothing)

    await engine.backfill_step(step, tenant.id, job_id)

    job = await deployed.backfill_job(tenant, job_id)
    calls = amazon.simulator.counters()
    assert (job["status"], job["phase"]) == ("SUCCEEDED", "DONE")
    assert job["ordersStored"] == job["ordersEnriched"] == 300
    assert SEARCH_ORDERS.name not in calls
    assert calls[GET_ORDERS.name]["requests"] >= 3


async def _steps_forever(step: Step, tenant_id: TenantId, job_id: uuid.UUID) -> None:
    while True:
        await engine.backfill_step(step, tenant_id, job_id)


class _Killed(Exception):
    pass


async def _nothing(*args: Any) -> None:
    return None
