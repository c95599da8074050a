"""Orders a marketplace sent that could not be stored: kept aside with what was received and
why, listed newest first, never logged with their payload."""

from __future__ import annotations

import datetime as dt
import logging
import math
import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from keybuzz.orders.models import QuarantinedOrder
from keybuzz.orders.records import RejectedOrder
from keybuzz.orders.repository import quarantine_orders
from keybuzz.sync.models import BackfillJob, BackfillStatus
from tests.factories import NOW, TenantCredentials, amazon_order_id

URL = "/api/v1/orders/quarantine"


def rejected(number: int = 1, **overrides: Any) -> RejectedOrder:
    values: dict[str, Any] = {
        "marketplace": "amazon",
        "source": "v2026.searchOrders",
        "reason": "unknown order status 'Teleported'",
        "external_order_id": amazon_order_id(number),
        "payload": {
            "orderId": amazon_order_id(number),
            "orderStatus": "Teleported",
            "buyer": {"buyerName": "Élodie Martin", "buyerEmail": "elodie@example.fr"},
        },
    }
    values.update(overrides)
    return RejectedOrder(**values)


async def _backfill_job(session: AsyncSession, tenant: TenantCredentials) -> uuid.UUID:
    job = BackfillJob(
        tenant_id=tenant.id,
        marketplace="amazon",
        status=BackfillStatus.RUNNING,
        days=90,
        window_start=NOW - dt.timedelta(days=90),
        window_end=NOW,
    )
    session.add(job)
    await session.flush()
    return job.id


async def _list(
    client: httpx.AsyncClient, tenant: TenantCredentials, **params: Any
) -> dict[str, Any]:
    response = await client.get(URL, params=params, headers=tenant.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_rejected_orders_are_kept_as_received_and_listed_newest_first(
    client: httpx.AsyncClient, session: AsyncSession, tenant: TenantCredentials
) -> None:
    job_id = await _backfill_job(session, tenant)
    first = rejected(1)
    second = rejected(2, source="report", external_order_id=None, reason="no order id")

    stored = await quarantine_orders(session, tenant.id, [first], backfill_job_id=job_id)
    stored += await quarantine_orders(session, tenant.id, [second])

    page = await _list(client, tenant)
    assert stored == 2
    assert page["nextCursor"] is None
    newest, oldest = page["items"]
    assert set(newest) == {
        "id",
        "marketplace",
        "source",
        "externalOrderId",
        "reason",
        "payload",
        "backfillJobId",
        "createdAt",
    }
    assert (newest["source"], newest["externalOrderId"], newest["reason"]) == (
        "report",
        None,
        "no order id",
    )
    assert newest["backfillJobId"] is None
    assert oldest["payload"] == first.payload
    assert (oldest["externalOrderId"], oldest["backfillJobId"]) == (
        first.external_order_id,
        str(job_id),
    )
    assert oldest["createdAt"].endswith("Z")


async def test_the_quarantine_is_the_tenants_own(
    client: httpx.AsyncClient,
    session: AsyncSession,
    tenant: TenantCredentials,
    other_tenant: TenantCredentials,
) -> None:
    await quarantine_orders(session, other_tenant.id, [rejected()])

    assert await _list(client, tenant) == {"items": [], "nextCursor": None}
    assert len((await _list(client, other_tenant))["items"]) == 1


async def test_the_quarantine_pages_with_a_cursor(
    client: httpx.AsyncClient, session: AsyncSession, tenant: TenantCredentials
) -> None:
    for number in range(5):
        await quarantine_orders(session, tenant.id, [rejected(number + 1)])

    seen: list[str] = []
    cursor = None
    for _ in range(5):
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = await _list(client, tenant, **params)
        seen += [item["externalOrderId"] for item in page["items"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break

    assert seen == [amazon_order_id(number) for number in (5, 4, 3, 2, 1)]


async def test_the_quarantine_of_one_backfill(
    client: httpx.AsyncClient, session: AsyncSession, tenant: TenantCredentials
) -> None:
    job_id = await _backfill_job(session, tenant)
    await quarantine_orders(session, tenant.id, [rejected(1), rejected(2)], backfill_job_id=job_id)
    await quarantine_orders(session, tenant.id, [rejected(3)])

    page = await _list(client, tenant, backfillJobId=str(job_id))

    assert {item["externalOrderId"] for item in page["items"]} == {
        amazon_order_id(1),
        amazon_order_id(2),
    }


async def test_deleting_a_backfill_keeps_what_it_set_aside(
    session: AsyncSession, tenant: TenantCredentials
) -> None:
    job_id = await _backfill_job(session, tenant)
    await quarantine_orders(session, tenant.id, [rejected()], backfill_job_id=job_id)

    await session.execute(
        delete(BackfillJob).where(BackfillJob.tenant_id == tenant.id, BackfillJob.id == job_id)
    )

    kept = await session.scalar(
        select(QuarantinedOrder.backfill_job_id).where(QuarantinedOrder.tenant_id == tenant.id)
    )
    assert kept is None


@pytest.mark.parametrize(
    ("params", "field"),
    [({"limit": 0}, "limit"), ({"limit": 201}, "limit"), ({"status": "x"}, "status")],
)
async def test_invalid_quarantine_parameters_are_problems(
    client: httpx.AsyncClient, tenant: TenantCredentials, params: dict[str, Any], field: str
) -> None:
    response = await client.get(URL, params=params, headers=tenant.headers)

    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == [field]


async def test_a_cursor_this_api_did_not_give_is_refused(
    client: httpx.AsyncClient, tenant: TenantCredentials
) -> None:
    response = await client.get(URL, params={"cursor": "bogus"}, headers=tenant.headers)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_input"


async def test_a_payload_is_never_logged(
    session: AsyncSession, tenant: TenantCredentials, caplog: pytest.LogCaptureFixture
) -> None:
    order = rejected()

    with caplog.at_level(logging.INFO):
        await quarantine_orders(session, tenant.id, [order])

    assert order.external_order_id in caplog.text
    assert order.reason in caplog.text
    assert "elodie@example.fr" not in caplog.text
    assert "Élodie" not in caplog.text


async def test_whatever_was_received_can_be_kept(
    session: AsyncSession, tenant: TenantCredentials
) -> None:
    payload = {
        "orderId": "402-\x00-1",
        "total": Decimal("12.50"),
        "purchaseDate": dt.datetime(2026, 5, 1, tzinfo=dt.UTC),
        "weight": math.nan,
        "lines": ({"sku": "A"},),
        7: "a key that is no string",
    }

    stored = await quarantine_orders(
        session,
        tenant.id,
        [rejected(external_order_id="402-\x00-1", reason="bad id", payload=payload)],
    )

    row = await session.scalar(
        select(QuarantinedOrder).where(QuarantinedOrder.tenant_id == tenant.id)
    )
    assert stored == 1
    assert row is not None
    assert row.external_order_id == "402-\ufffd-1"
    assert row.payload == {
        "orderId": "402-\ufffd-1",
        "total": "12.50",
        "purchaseDate": "2026-05-01T00:00:00+00:00",
        "weight": "nan",
        "lines": [{"sku": "A"}],
        "7": "a key that is no string",
    }


async def test_nothing_to_set_aside_stores_nothing(
    session: AsyncSession, tenant: TenantCredentials
) -> None:
    assert await quarantine_orders(session, tenant.id, []) == 0
