"""The sync engine end to end against the simulator: a backfill ends with exactly Amazon's
orders, running it again changes nothing, an incremental sync brings exactly what changed (with
its events), a refresh brings a change made a second before, a cancel stops it."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from keybuzz.amazon import models_v2026, normalize
from keybuzz.orders.records import OrderStatus
from keybuzz.simulator import SellerSpec, SimulatorServer, SimulatorSettings
from keybuzz.sync import backfill as backfill_service
from keybuzz.sync import engine
from keybuzz.sync.engine import Step
from keybuzz.tenants.models import TenantId
from tests.factories import TenantCredentials
from tests.fixtures.amazon import BACKFILL, Deployed

FR, DE = "A13V1IB3VIYZZH", "A1PA6795UKMFR9"
SETTLED = 40 * 86400
"""Orders at least this old have every status change behind them: the ground truth stands."""
RATE_SCALE = 200


def settled_amazon() -> Iterator[SimulatorServer]:
    """Amazon with no seller but those a test creates, at a rate a test can wait for."""
    settings = SimulatorSettings(orders=0, rate_scale=RATE_SCALE, report_generation_seconds=1)
    with SimulatorServer(settings) as server:
        yield server


@pytest.fixture
def amazon() -> Iterator[SimulatorServer]:
    yield from settled_amazon()


def settled_seller(server: SimulatorServer, orders: int, *, seed: int = 3) -> str:
    """A seller whose orders (FR and DE, over the 49 days before the last 40: inside any
    90-day window) change no more by themselves; the consent page signs it in."""
    seller_id = f"AKBSETTLED{seed:04d}"
    server.simulator.create_seller(
        SellerSpec(
            seller_id=seller_id,
            orders=orders,
            days=49,
            seed=seed,
            marketplaces=(FR, DE),
            anchor=server.simulator.now() - SETTLED,
        )
    )
    server.simulator.consenting_seller = seller_id
    return seller_id


async def backfill(deployed: Deployed, tenant: TenantCredentials, **body: Any) -> dict[str, Any]:
    """A backfill requested and run by a worker to its end; the job as it ended."""
    queued = await deployed.client.post(BACKFILL, json=body, headers=tenant.headers)
    assert queued.status_code == 202, queued.text
    job_id = queued.json()["id"]
    await deployed.run_jobs(until=lambda: deployed.backfill_over(tenant, job_id))
    job: dict[str, Any] = (
        await deployed.client.get(f"{BACKFILL}/{job_id}", headers=tenant.headers)
    ).json()
    return job


async def stored_orders(client: httpx.AsyncClient, tenant: TenantCredentials) -> list[Any]:
    orders: list[Any] = []
    params: dict[str, Any] = {"limit": 200}
    while True:
        page = (await client.get("/api/v1/orders", params=params, headers=tenant.headers)).json()
        orders += page["items"]
        if page["nextCursor"] is None:
            return orders
        params["cursor"] = page["nextCursor"]


def _view(order: dict[str, Any]) -> dict[str, Any]:
    """What an agent sees of an order, as the API shows it, to compare with Amazon's."""
    address = order["shippingAddress"] or {}
    return {
        "orderDate": dt.datetime.fromisoformat(order["orderDate"]),
        "marketplaceId": order["marketplaceId"],
        "currency": order["currency"],
        "totalAmount": _money(order["totalAmount"]),
        "customerName": order["customerName"],
        "customerEmail": order["customerEmail"],
        "place": (address.get("city"), address.get("postalCode"), address.get("countryCode")),
        "items": Counter(
            (i["sku"], i["asin"], i["quantity"], _money(i["unitPrice"])) for i in order["items"]
        ),
    }


def _money(amount: str | None) -> Decimal | None:
    return None if amount is None else Decimal(amount)


def _truth(order: dict[str, Any]) -> tuple[dict[str, Any], set[OrderStatus]]:
    """Amazon's order as the API should show it, and the statuses that say what Amazon says:
    its order status, or DELIVERED when its packages say so (v2026 tells, v0 cannot)."""
    record = normalize.from_v2026(models_v2026.Order.model_validate(order))
    amazon_status, _ = normalize.map_status(order["orderStatus"], order["orderId"])
    address = record.shipping_address or {}
    view = {
        "orderDate": record.order_date,
        "marketplaceId": record.marketplace_id,
        "currency": record.currency,
        "totalAmount": record.total_amount,
        "customerName": record.customer_name,
        "customerEmail": record.customer_email,
        "place": (address.get("city"), address.get("postalCode"), address.get("countryCode")),
        "items": Counter((i.sku, i.asin, i.quantity, i.unit_price) for i in record.items or ()),
    }
    return view, {amazon_status, record.order_status}


def assert_matches_amazon(
    server: SimulatorServer,
    seller: str,
    stored: list[Any],
    truth: list[dict[str, Any]],
    earlier: dict[str, Any] | None = None,
) -> None:
    """Every order of Amazon's, once, as Amazon says it. Amazon's sources say more or less of
    an order (v0 gives an FBA order's relay email, v2026 does not; a report gives a cancelled
    order's currency): where v2026's view says nothing, what another source said is checked
    against the order's own value. ``earlier``: orders as the API showed them before Amazon
    changed them; what Amazon no longer shows (a cancelled order's total) is what it showed."""
    by_id = {order["externalOrderId"]: order for order in stored}
    assert len(by_id) == len(stored), "an order is stored twice"
    assert set(by_id) == {order["orderId"] for order in truth}
    book = server.simulator.sellers[seller].book
    for order in truth:
        mine, actual = _view(by_id[order["orderId"]]), book.get(order["orderId"], 2**40)
        expected, statuses = _truth(order)
        assert actual is not None
        # Where v2026 says nothing, another source may have said the order's own value.
        owns = {
            "customerName": actual.buyer_name,
            "customerEmail": actual.buyer_email,
            "currency": actual.marketplace.currency,
        }
        for field, own in owns.items():
            if expected[field] is None and mine[field] in (None, own):
                expected[field] = mine[field]
        if earlier and order["orderId"] in earlier:
            _keep_what_amazon_stopped_showing(expected, mine, _view(earlier[order["orderId"]]))
        assert mine == expected, order["orderId"]
        assert by_id[order["orderId"]]["orderStatus"] in statuses, order["orderId"]


def _keep_what_amazon_stopped_showing(
    expected: dict[str, Any], mine: dict[str, Any], before: dict[str, Any]
) -> None:
    """A value Amazon's newer view leaves out is not erased (orders/upsert.py): where Amazon
    says nothing now, the order keeps what Amazon said before."""
    for field, value in expected.items():
        if field == "items":
            unpriced = Counter({(*line[:3], None): n for line, n in before[field].items()})
            if value == unpriced and mine[field] == before[field]:
                expected[field] = before[field]
        elif value in (None, (None, None, None)) and mine[field] == before[field]:
            expected[field] = before[field]


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
    step = Step(deployed.runtime, lambda: False, _nothing, _nothing)
    start_enrichment = backfill_service.start_enrichment

    async def killed(*args: Any) -> None:
        raise _Killed

    monkeypatch.setattr(backfill_service, "start_enrichment", killed)
    with pytest.raises(_Killed):  # the reports, read to their last chunk; then the step dies
        await _steps_forever(step, tenant.id, job_id)
    monkeypatch.setattr(backfill_service, "start_enrichment", start_enrichment)
    while (job := await _job(deployed, tenant, job_id))["status"] == "RUNNING":
        await engine.backfill_step(step, tenant.id, job_id)

    assert (job["status"], job["phase"]) == ("SUCCEEDED", "DONE")
    assert job["ordersStored"] == job["ordersEnriched"] == 300


async def _steps_forever(step: Step, tenant_id: TenantId, job_id: uuid.UUID) -> None:
    while True:
        await engine.backfill_step(step, tenant_id, job_id)


class _Killed(Exception):
    pass


async def _nothing(*args: Any) -> None:
    return None


async def _job(deployed: Deployed, tenant: TenantCredentials, job_id: uuid.UUID) -> Any:
    return (await deployed.client.get(f"{BACKFILL}/{job_id}", headers=tenant.headers)).json()
