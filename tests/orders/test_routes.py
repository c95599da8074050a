from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from keybuzz.amazon.flatfile import OrderReportRow
from keybuzz.amazon.normalize import from_report_rows
from keybuzz.orders.records import DeliveryStatus, Detail, ItemRecord, OrderRecord, OrderStatus
from keybuzz.orders.service import upsert_orders
from tests.factories import NOW, TenantCredentials, order_record

PROBLEM = "application/problem+json"


async def _store(session: AsyncSession, tenant: TenantCredentials, *records: OrderRecord) -> None:
    await upsert_orders(session, tenant.id, list(records))


async def _list(
    client: httpx.AsyncClient, tenant: TenantCredentials, **params: Any
) -> dict[str, Any]:
    response = await client.get("/api/v1/orders", params=params, headers=tenant.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _refs(page: dict[str, Any]) -> list[str]:
    return [order["externalOrderId"] for order in page["items"]]


async def test_an_order_comes_back_in_camel_case_with_its_items(
    client: httpx.AsyncClient, session: AsyncSession, tenant: TenantCredentials
) -> None:
    record = order_record(customer_name="Zoë Lefèvre")
    await _store(session, tenant, record)

    page = await _list(client, tenant)

    [order] = page["items"]
    assert page["nextCursor"] is None
    assert order["externalOrderId"] == record.external_order_id
    assert order["orderRef"] == record.external_order_id
    assert order["customerName"] == "Zoë Lefèvre"
    assert order["marketplaceId"] == "A13V1IB3VIYZZH"
    assert order["totalAmount"] == "42.50"
    assert order["currency"] == "EUR"
    assert order["orderStatus"] == "CONFIRMED"
    assert order["savStatus"] == "NONE"
    assert order["orderDate"].endswith("Z")
    assert [item["sku"] for item in order["items"]] == [i.sku for i in record.items or ()]
    assert order["items"][1]["unitPrice"] == "15.00"
    assert order["items"][1]["quantity"] == 2


async def test_orders_are_newest_first_by_default_and_can_be_reversed(
    client: httpx.AsyncClient, session: AsyncSession, tenant: TenantCredentials
) -> None:
    records = [order_record(order_date=NOW - dt.timedelta(days=d)) for d in (5, 1, 3)]
    await _store(session, tenant, *records)

    newest_first = _refs(await _list(client, tenant))
    oldest_first = _refs(await _list(client, tenant, sort="orderDate"))

    by_date = sorted(records, key=lambda r: r.order_date, reverse=True)
    assert newest_first == [r.external_order_id for r in by_date]
    assert oldest_first == list(reversed(newest_first))


@pytest.mark.parametrize(
    ("field", "param", "wanted", "other"),
    [
        ("marketplace", "marketplace", "amazon", "cdiscount"),
        ("order_status", "orderStatus", OrderStatus.SHIPPED, OrderStatus.CONFIRMED),
        ("delivery_status", "deliveryStatus", DeliveryStatus.IN_TRANSIT, DeliveryStatus.LOST),
    ],
)
async def test_each_status_filter_returns_only_matching_orders(
    client: httpx.AsyncClient,
    session: AsyncSession,
    tenant: TenantCredentials,
    field: str,
    param: str,
    wanted: str,
    other: str,
) -> None:
    match = order_record(**{field: wanted})
    await _store(session, tenant, match, order_record(**{field: other}))

    page = await _list(client, tenant, **{param: str(wanted)})

    assert _refs(page) == [match.external_order_id]


async def test_a_filter_accepts_several_values(
    client: httpx.AsyncClient, session: AsyncSession, tenant: TenantCredentials
) -> None:
    shipped = order_record(order_status=OrderStatus.SHIPPED)
    cancelled = order_record(order_status=OrderStatus.CANCELLED)
    await _store(session, tenant, shipped, cancelled, order_record())

    response = await client.get(
        "/api/v1/orders?orderStatus=SHIPPED&orderStatus=CANCELLED", headers=tenant.headers
    )

    assert set(_refs(response.json())) == {shipped.external_order_id, cancelled.external_order_id}


async def test_sav_status_filter_follows_helpdesk_updates(
    client: httpx.AsyncClient, session: AsyncSession, tenant: TenantCredentials
) -> None:
    record = order_record()
    await _store(session, tenant, record, order_record())
    [target] = (await _list(client, tenant, q=record.external_order_id))["items"]

    patched = await client.patch(
        f"/api/v1/orders/{target['id']}", json={"savStatus": "OPEN"}, headers=tenant.headers
    )
    page = await _list(client, tenant, savStatus="OPEN")

    assert patched.status_code == 200
    assert patched.json()["savStatus"] == "OPEN"
    assert _refs(page) == [record.external_order_id]


async def test_date_range_is_from_inclusive_to_exclusive(
    client: httpx.AsyncClient, session: AsyncSession, tenant: TenantCredentials
) -> None:
    start = NOW - dt.timedelta(days=10)
    records = [order_record(order_date=start + dt.timedelta(days=d)) for d in range(5)]
    await _store(session, tenant, *records)

    page = await _list(
        client,
        tenant,
        **{
            "from": (start + dt.timedelta(days=1)).isoformat(),
            "to": (start + dt.timedelta(days=3)).isoformat(),
        },
    )

    assert sorted(_refs(page)) == sorted(r.external_order_id for r in records[1:3])


@pytest.mark.parametrize(
    ("make_query", "expected_index"),
    [
        (lambda r: r.external_order_id, 0),
        (lambda r: r.external_order_id[-9:], 0),
        (lambda r: "DUPONT", 1),
        (lambda r: "ÉLODIE", 1),
        (lambda r: "claire.d@", 1),
        (lambda r: "mug-ble", 2),
        (lambda r: "REF-SELLER-77", 2),
    ],
)
async def test_search_finds_orders_by_id_ref_name_email_or_sku(
    client: httpx.AsyncClient,
    session: AsyncSession,
    tenant: TenantCredentials,
    make_query: Any,
    expected_index: int,
) -> None:
    records = [
        order_record(customer_name="Alice Martin", customer_email="alice@example.fr"),
        order_record(customer_name="Claire-Élodie Dupont", customer_email="claire.d@example.fr"),
        order_record(
            order_ref="REF-SELLER-77",
            items=(ItemRecord(external_item_id="1", sku="MUG-BLEU-01", quantity=1),),
        ),
    ]
    await _store(session, tenant, *records)

    page = await _list(client, tenant, q=make_query(records[0]))

    assert _refs(page) == [records[expected_index].external_order_id]


async def test_search_treats_wildcards_literally(
    client: httpx.AsyncClient, session: AsyncSession, tenant: TenantCredentials
) -> None:
    await _store(session, tenant, order_record(), order_record())

    page = await _list(client, tenant, q="%%%")

    assert page["items"] == []


async def test_sla_status_is_computed_when_read(
    client: httpx.AsyncClient, session: AsyncSession, tenant: TenantCredentials
) -> None:
    now = dt.datetime.now(dt.UTC)
    breached = order_record(latest_ship_date=now - dt.timedelta(hours=1))
    at_risk = order_record(latest_ship_date=now + dt.timedelta(hours=5))
    ok = order_record(latest_ship_date=now + dt.timedelta(days=3))
    shipped_late = order_record(
        order_status=OrderStatus.SHIPPED, latest_ship_date=now - dt.timedelta(days=2)
    )
    cancelled = order_record(
        order_status=OrderStatus.CANCELLED, latest_ship_date=now - dt.timedelta(days=2)
    )
    no_deadline = order_record(latest_ship_date=None)
    await _store(session, tenant, breached, at_risk, ok, shipped_late, cancelled, no_deadline)

    everything = {
        o["externalOrderId"]: o["slaStatus"] for o in (await _list(client, tenant))["items"]
    }
    breached_only = _refs(await _list(client, tenant, slaStatus="BREACHED"))
    at_risk_only = _refs(await _list(client, tenant, slaStatus="AT_RISK"))
    ok_only = set(_refs(await _list(client, tenant, slaStatus="OK")))

    assert everything[breached.external_order_id] == "BREACHED"
    assert everything[at_risk.external_order_id] == "AT_RISK"
    assert everything[ok.external_order_id] == "OK"
    assert everything[shipped_late.external_order_id] == "OK"
    assert everything[cancelled.external_order_id] == "OK"
    assert everything[no_deadline.external_order_id] == "OK"
    assert breached_only == [breached.external_order_id]
    assert at_risk_only == [at_risk.external_order_id]
    assert ok_only == {r.external_order_id for r in (ok, shipped_late, cancelled, no_deadline)}


async def test_the_cursor_walks_more_than_a_thousand_orders_exactly_once(
    client: httpx.AsyncClient, session: AsyncSession, tenant: TenantCredentials
) -> None:
    same_day = NOW - dt.timedelta(days=2)
    records = [
        order_record(
            order_date=same_day if n % 3 == 0 else NOW - dt.timedelta(minutes=n),
            items=None,
        )
        for n in range(1234)
    ]
    await _store(session, tenant, *records)

    for sort in ("-orderDate", "orderDate"):
        seen: list[str] = []
        dates: list[str] = []
        params: dict[str, Any] = {"limit": 200, "sort": sort}
        pages = 0
        while True:
            page = await _list(client, tenant, **params)
            pages += 1
            seen += _refs(page)
            dates += [o["orderDate"] for o in page["items"]]
            if page["nextCursor"] is None:
                break
            params["cursor"] = page["nextCursor"]

        assert pages == 7
        assert len(seen) == len(set(seen)) == 1234
        assert set(seen) == {r.external_order_id for r in records}
        assert dates == sorted(dates, reverse=sort.startswith("-"))


async def test_the_cursor_also_walks_a_filtered_list(
    client: httpx.AsyncClient, session: AsyncSession, tenant: TenantCredentials
) -> None:
    shipped = [order_record(order_status=OrderStatus.SHIPPED, items=None) for _ in range(25)]
    await _store(session, tenant, *shipped, *[order_record(items=None) for _ in range(25)])

    seen: list[str] = []
    params: dict[str, Any] = {"limit": 10, "orderStatus": "SHIPPED"}
    while True:
        page = await _list(client, tenant, **params)
        seen += _refs(page)
        if not page["nextCursor"]:
            break
        params["cursor"] = page["nextCursor"]

    assert sorted(seen) == sorted(r.external_order_id for r in shipped)


async def test_one_order_by_id_with_items(
    client: httpx.AsyncClient, session: AsyncSession, tenant: TenantCredentials
) -> None:
    record = order_record()
    await _store(session, tenant, record)
    [listed] = (await _list(client, tenant))["items"]

    response = await client.get(f"/api/v1/orders/{listed['id']}", headers=tenant.headers)

    assert response.status_code == 200
    assert response.json() == listed


async def test_an_unknown_order_is_a_404_problem(
    client: httpx.AsyncClient, tenant: TenantCredentials
) -> None:
    response = await client.get(f"/api/v1/orders/{uuid.uuid4()}", headers=tenant.headers)

    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["code"] == "order_not_found"


async def test_patch_refuses_marketplace_fields(
    client: httpx.AsyncClient, session: AsyncSession, tenant: TenantCredentials
) -> None:
    await _store(session, tenant, order_record())
    [order] = (await _list(client, tenant))["items"]

    response = await client.patch(
        f"/api/v1/orders/{order['id']}",
        json={"savStatus": "OPEN", "orderStatus": "CANCELLED"},
        headers=tenant.headers,
    )

    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert [e["field"] for e in response.json()["errors"]] == ["orderStatus"]
    assert (await _list(client, tenant))["items"][0]["orderStatus"] == "CONFIRMED"


@pytest.mark.parametrize(
    ("query", "status", "field"),
    [
        ("limit=0", 422, "limit"),
        ("limit=201", 422, "limit"),
        ("limit=abc", 422, "limit"),
        ("orderStatus=LOST", 422, "orderStatus.0"),
        ("slaStatus=LATE", 422, "slaStatus.0"),
        ("sort=price", 422, "sort"),
        ("from=yesterday", 422, "from"),
        ("from=2026-01-02T00:00:00", 400, "from"),
        ("from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", 400, "from"),
        ("q=ab", 400, "q"),
        ("cursor=not-a-cursor", 400, "cursor"),
        ("cursor=WyJ4IiwxLDJd", 400, "cursor"),
        ("status=SHIPPED", 422, "status"),
        ("q=abc%00def", 422, "q"),
        ("marketplace=ama%00zon", 422, "marketplace.0"),
        ("cursor=%00", 422, "cursor"),
    ],
)
async def test_invalid_list_parameters_are_problems_naming_the_field(
    client: httpx.AsyncClient, tenant: TenantCredentials, query: str, status: int, field: str
) -> None:
    response = await client.get(f"/api/v1/orders?{query}", headers=tenant.headers)

    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM
    assert field in [error["field"] for error in response.json()["errors"]]


async def test_a_cursor_of_another_sort_is_refused(
    client: httpx.AsyncClient, session: AsyncSession, tenant: TenantCredentials
) -> None:
    await _store(session, tenant, *[order_record(items=None) for _ in range(3)])
    cursor = (await _list(client, tenant, limit=1))["nextCursor"]

    response = await client.get(
        "/api/v1/orders", params={"cursor": cursor, "sort": "updatedAt"}, headers=tenant.headers
    )

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "cursor"


async def test_a_nul_character_in_the_purged_marketplace_is_refused(
    client: httpx.AsyncClient, tenant: TenantCredentials
) -> None:
    response = await client.delete(
        "/api/v1/orders",
        params={"marketplace": "a\x00b", "confirm": "true"},
        headers=tenant.headers,
    )

    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM


async def test_an_id_that_is_no_uuid_names_no_order(
    client: httpx.AsyncClient, tenant: TenantCredentials
) -> None:
    response = await client.get("/api/v1/orders/42", headers=tenant.headers)

    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["code"] == "not_found"


async def test_purge_needs_confirmation_then_deletes_one_marketplace(
    client: httpx.AsyncClient, session: AsyncSession, tenant: TenantCredentials
) -> None:
    amazon = [order_record() for _ in range(3)]
    other = order_record(marketplace="cdiscount")
    await _store(session, tenant, *amazon, other)

    unconfirmed = await client.delete(
        "/api/v1/orders",
        params={"marketplace": "amazon", "confirm": "false"},
        headers=tenant.headers,
    )
    without_confirm = await client.delete(
        "/api/v1/orders", params={"marketplace": "amazon"}, headers=tenant.headers
    )
    confirmed = await client.delete(
        "/api/v1/orders",
        params={"marketplace": "amazon", "confirm": "true"},
        headers=tenant.headers,
    )

    assert unconfirmed.status_code == 400
    assert unconfirmed.json()["code"] == "purge_not_confirmed"
    assert "3 amazon orders" in unconfirmed.json()["detail"]
    assert without_confirm.status_code == 422
    assert [error["field"] for error in without_confirm.json()["errors"]] == ["confirm"]
    assert confirmed.json() == {"deletedOrders": 3, "marketplace": "amazon"}
    assert _refs(await _list(client, tenant)) == [other.external_order_id]


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).json() == {"status": "ready"}


async def test_openapi_documents_the_api(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()

    assert {
        "/api/v1/orders",
        "/api/v1/orders/{order_id}",
        "/api/v1/orders/{order_id}/events",
        "/api/v1/orders/quarantine",
    } <= set(spec["paths"])
    assert {"ApiKey", "TenantId"} <= set(spec["components"]["securitySchemes"])
    assert "404" in spec["paths"]["/api/v1/orders/{order_id}"]["get"]["responses"]
    assert "404" in spec["paths"]["/api/v1/orders/{order_id}/events"]["get"]["responses"]
    assert "400" in spec["paths"]["/api/v1/orders/quarantine"]["get"]["responses"]
    assert (await client.get("/docs")).status_code == 200


def _report_row(**values: Any) -> OrderReportRow:
    """A line of the order report; the cells not given are empty."""
    cells: dict[str, Any] = {field.name: None for field in dataclasses.fields(OrderReportRow)}
    cells.update(
        amazon_order_id="403-1234567-7654321",
        purchase_date=NOW - dt.timedelta(days=2),
        last_updated_date=NOW - dt.timedelta(days=1),
        order_status="Shipped",
        sales_channel="Amazon.fr",
        sku="KBZ-1",
        asin="B0AAAAAAAA",
        quantity=2,
        currency="EUR",
        item_price=Decimal("40.00"),
        ship_city="Lyon",
        ship_postal_code="69001",
        ship_country="FR",
    )
    cells.update(values)
    return OrderReportRow(**cells)


async def test_an_order_from_the_report_has_no_total_until_the_api_brings_one(
    client: httpx.AsyncClient, session: AsyncSession, tenant: TenantCredentials
) -> None:
    report = from_report_rows([_report_row(), _report_row(sku="KBZ-2", quantity=1)])
    await _store(session, tenant, report)

    [order] = (await _list(client, tenant))["items"]
    assert order["totalAmount"] is None
    assert (order["enrichedAt"], order["customerName"]) == (None, None)
    assert order["items"][0]["unitPrice"] == "20.00"

    api = dataclasses.replace(
        report, total_amount=Decimal("49.99"), customer_name="Élodie Martin", detail=Detail.FULL
    )
    await _store(session, tenant, api)

    [order] = (await _list(client, tenant))["items"]
    assert (order["totalAmount"], order["customerName"]) == ("49.99", "Élodie Martin")
    assert order["enrichedAt"].endswith("Z")


def test_factories_make_distinct_orders() -> None:
    first, second = order_record(), order_record()
    assert first.external_order_id != second.external_order_id
    assert dataclasses.replace(first).external_order_id == first.external_order_id
