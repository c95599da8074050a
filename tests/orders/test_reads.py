"""The read path answers with PostgreSQL's JSON (issue 11): every field of the list, an order and
its timeline is what the previous code (``tests/orders/previous_reads.py``, main's SQLAlchemy and
Pydantic path) made of the same rows, and the bytes are what the response models document."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from keybuzz.config import Settings
from keybuzz.db import (
    create_engine,
    create_sessionmaker,
    libpq_url,
    raw_connection,
    transaction,
)
from keybuzz.deps import SESSION_COOKIE
from keybuzz.orders import reads, repository
from keybuzz.orders.models import EventSource
from keybuzz.orders.records import (
    DeliveryStatus,
    Detail,
    ItemRecord,
    OrderRecord,
    OrderStatus,
    SavStatus,
)
from keybuzz.orders.schemas import OrderEventList, OrderListParams, OrderPage, OrderRead
from keybuzz.orders.service import upsert_orders
from keybuzz.reads import Reads, Sql
from keybuzz.runtime import open_runtime
from keybuzz.tenants import service as tenants
from keybuzz.tenants.service import Credentials
from tests.factories import NOW, TenantCredentials, make_tenant
from tests.fixtures.apps import api_client
from tests.orders import previous_reads

NAMES = (
    "Zoë Lefèvre",
    "Łukasz Żółć",
    "山田 太郎",
    "Ahmad عبد الله",
    'O\'Brien "the buyer" \\ slash',
    "Émoji 🎁📦 buyer",
    "tab\tand\nnewline\u0001control",
    None,
)
MARKETPLACES = (
    ("amazon", "A13V1IB3VIYZZH", "EUR"),
    ("amazon", "A1PA6795UKMFR9", "EUR"),
    ("amazon", "A1F83G8C2ARO7P", "GBP"),
    ("amazon", "A2NODRKZP88ZB9", "SEK"),
    ("cdiscount", None, "EUR"),
    ("fnac", None, None),
)
TOTALS = (
    Decimal("42.50"),
    None,
    Decimal("0"),
    Decimal("0.10"),
    Decimal("12345.6789"),
    Decimal("7"),
)
ADDRESSES: tuple[dict[str, Any] | None, ...] = (
    {"city": "Lyon", "postalCode": "69001", "countryCode": "FR"},
    None,
    {"city": "Zürich", "line1": "Bahnhofstraße 1 «Haus»", "countryCode": "CH"},
    {"city": "東京", "geo": {"lat": 35.6895, "lng": 139.6917}, "tags": ["a", 1, True, None]},
    {},
)
MICROSECONDS = (0, 120000, 5, 999999, 100)


def _items(number: int) -> tuple[ItemRecord, ...] | None:
    if number == 7:
        return tuple(
            ItemRecord(
                external_item_id=f"{number}{index:03d}",
                sku=f"BIG-{index}",
                asin=f"B0BIG{index:05d}",
                title=f"Article n°{index} — «{index}»",
                quantity=index % 4,
                unit_price=Decimal(index) / 100 if index % 5 else None,
            )
            for index in range(120)
        )
    if number % 11 == 0:
        return ()
    if number % 13 == 0:
        return None  # a report line without items yet: the order has none stored
    return tuple(
        ItemRecord(
            external_item_id=f"{number}{index:02d}",
            sku=None if index == 2 else f"SKU-{number}-{index}",
            asin=None if number % 3 == 0 else f"B0TEST{index:04d}",
            title=None if number % 4 == 0 else "Tasse à café ☕",
            quantity=index + 1,
            unit_price=Decimal("15.00") if index else Decimal("12.5"),
        )
        for index in range(1 + number % 3)
    )


def varied_order(number: int) -> OrderRecord:
    """Order ``number`` of the golden set: each field cycles through its awkward values."""
    marketplace, marketplace_id, currency = MARKETPLACES[number % len(MARKETPLACES)]
    status = list(OrderStatus)[number % len(OrderStatus)]
    order_date = (NOW - dt.timedelta(hours=number * 5 + 1)).replace(
        microsecond=MICROSECONDS[number % len(MICROSECONDS)]
    )
    if number % 40 == 0:
        order_date = (NOW - dt.timedelta(days=3)).replace(microsecond=0)  # ties on the sort
    ship_by = (
        None,
        NOW - dt.timedelta(hours=2),  # breached while pending or confirmed
        NOW + dt.timedelta(hours=5),  # at risk
        NOW + dt.timedelta(days=4),
    )[number % 4]
    delivered = status is OrderStatus.DELIVERED
    return OrderRecord(
        marketplace=marketplace,
        marketplace_id=marketplace_id,
        external_order_id=f"G{number:03d}-{marketplace}",
        order_ref=f"REF-{number}" if number % 2 else None,
        order_date=order_date,
        order_status=status,
        external_updated_at=order_date + dt.timedelta(minutes=number),
        customer_name=NAMES[number % len(NAMES)],
        customer_email=None if number % 5 == 0 else f"buyer{number}@marketplace.amazon.fr",
        currency=currency,
        total_amount=TOTALS[number % len(TOTALS)],
        delivery_status=(None, *DeliveryStatus)[number % (len(DeliveryStatus) + 1)],
        carrier="Colissimo" if number % 3 else None,
        tracking_code=f"6A{number:010d}" if number % 3 else None,
        shipping_address=ADDRESSES[number % len(ADDRESSES)],
        fulfillment_channel=("MFN", "AFN", None)[number % 3],
        latest_ship_date=ship_by,
        latest_delivery_date=ship_by + dt.timedelta(days=2) if ship_by else None,
        shipped_at=order_date + dt.timedelta(days=1) if number % 2 else None,
        delivered_at=order_date + dt.timedelta(days=3, microseconds=250) if delivered else None,
        items=_items(number),
        detail=(Detail.REPORT, Detail.ORDER, Detail.FULL)[number % 3],
    )


ORDERS = 300


@pytest.fixture
async def golden(session: AsyncSession, tenant: TenantCredentials) -> list[uuid.UUID]:
    """300 varied orders, some changed since (timelines), some with an agent's SAV status."""
    records = [varied_order(number) for number in range(1, ORDERS + 1)]
    await upsert_orders(session, tenant.id, records)
    changed = [
        dataclasses.replace(
            record,
            order_status=OrderStatus.SHIPPED,
            tracking_code=f"NEW{index}",
            external_updated_at=record.external_updated_at + dt.timedelta(hours=1),
        )
        for index, record in enumerate(records[::9])
    ]
    await upsert_orders(session, tenant.id, changed, source=EventSource.SYNC)
    ids = [row["id"] for row in await _all_rows(session, tenant)]
    for index, order_id in enumerate(ids[::17]):
        await repository.set_sav_status(
            session, tenant.id, order_id, list(SavStatus)[1 + index % 3]
        )
    assert len(ids) == ORDERS
    return ids


async def _all_rows(session: AsyncSession, tenant: TenantCredentials) -> list[dict[str, Any]]:
    params = OrderListParams.model_validate({"limit": 200})
    query = previous_reads.build_query(params)
    rows, _ = await previous_reads.repository_list_orders(
        session, tenant.id, dataclasses.replace(query, limit=ORDERS + 1)
    )
    return rows


def assert_identical(new: Any, old: Any, path: str = "$") -> None:
    """Equal values of the same JSON types (``1`` is not ``1.0``, ``"1"`` not ``1``)."""
    assert type(new) is type(old), f"{path}: {new!r} (new) is not {old!r} (previous)"
    if isinstance(old, dict):
        assert list(new) == list(old), f"{path}: keys {list(new)} (new), {list(old)} (previous)"
        for key in old:
            assert_identical(new[key], old[key], f"{path}.{key}")
    elif isinstance(old, list):
        assert len(new) == len(old), f"{path}: {len(new)} elements (new), {len(old)} (previous)"
        for index, (a, b) in enumerate(zip(new, old, strict=True)):
            assert_identical(a, b, f"{path}[{index}]")
    else:
        assert new == old, f"{path}: {new!r} (new) != {old!r} (previous)"


def previous_json(model: BaseModel) -> Any:
    """What FastAPI sent for a response model: its JSON by alias."""
    return json.loads(model.model_dump_json(by_alias=True))


def conforms(body: bytes, model: type[BaseModel]) -> Any:
    """The body parsed, after checking that the response model reads it and writes it back the
    same: the bytes are what OpenAPI documents."""
    parsed = json.loads(body)
    assert_identical(previous_json(model.model_validate_json(body)), parsed)
    return parsed


async def _new_page(
    client: httpx.AsyncClient, tenant: TenantCredentials, params: dict[str, Any]
) -> Any:
    response = await client.get("/api/v1/orders", params=params, headers=tenant.headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return conforms(response.content, OrderPage)


LISTS: list[dict[str, Any]] = [
    {},
    {"sort": "orderDate", "limit": 37},
    {"sort": "-updatedAt", "limit": 200},
    {"sort": "updatedAt", "limit": 1},
    {"orderStatus": ["PENDING", "CONFIRMED"]},
    {"deliveryStatus": ["IN_TRANSIT"], "sort": "orderDate"},
    {"savStatus": ["OPEN", "RESOLVED"]},
    {"slaStatus": ["BREACHED"]},
    {"slaStatus": ["AT_RISK", "OK"], "limit": 60},
    {"marketplace": ["cdiscount", "fnac"]},
    {"q": "zoë"},
    {"q": "sku-1"},
    {"q": "big-11"},
    {"q": "山田 太郎", "limit": 5},
    {"q": '"the buyer" \\'},
    {"q": "100%"},
    {
        "from": (NOW - dt.timedelta(days=30)).isoformat(),
        "to": (NOW - dt.timedelta(days=10)).isoformat(),
    },
]


@pytest.mark.parametrize("params", LISTS, ids=[f"list{index}" for index in range(len(LISTS))])
async def test_every_page_of_the_list_is_what_the_previous_code_returned(
    client: httpx.AsyncClient,
    session: AsyncSession,
    tenant: TenantCredentials,
    golden: list[uuid.UUID],
    params: dict[str, Any],
) -> None:
    cursor: str | None = None
    pages = 0
    while True:
        request = {**params, **({"cursor": cursor} if cursor else {})}
        new = await _new_page(client, tenant, request)
        old = await previous_reads.list_orders(
            session, tenant.id, OrderListParams.model_validate(request)
        )
        assert_identical(new, previous_json(old))
        pages += 1
        cursor = new["nextCursor"]
        if cursor is None:
            break
    if not params:
        assert pages == 6  # 300 orders, 50 a page


async def test_every_order_is_what_the_previous_code_returned(
    client: httpx.AsyncClient,
    session: AsyncSession,
    tenant: TenantCredentials,
    golden: list[uuid.UUID],
) -> None:
    item_counts = set()
    for order_id in golden:
        response = await client.get(f"/api/v1/orders/{order_id}", headers=tenant.headers)
        assert response.status_code == 200, response.text
        new = conforms(response.content, OrderRead)
        old = await previous_reads.get_order(session, tenant.id, order_id)
        assert_identical(new, previous_json(old))
        item_counts.add(len(new["items"]))
    assert {0, 1, 2, 3, 120} <= item_counts


async def test_every_timeline_is_what_the_previous_code_returned(
    client: httpx.AsyncClient,
    session: AsyncSession,
    tenant: TenantCredentials,
    golden: list[uuid.UUID],
) -> None:
    sources = set()
    for order_id in golden:
        response = await client.get(f"/api/v1/orders/{order_id}/events", headers=tenant.headers)
        assert response.status_code == 200, response.text
        new = conforms(response.content, OrderEventList)
        old = await previous_reads.list_order_events(session, tenant.id, order_id)
        assert_identical(new, previous_json(old))
        sources |= {event["source"] for event in new["items"]}
    assert sources == {"sync", "agent"}


async def test_the_orders_page_session_reads_the_same_json(
    client: httpx.AsyncClient,
    session: AsyncSession,
    tenant: TenantCredentials,
    golden: list[uuid.UUID],
) -> None:
    signed_in = await tenants.sign_in(session, tenant.api_key, dt.timedelta(hours=1))
    client.cookies.set(SESSION_COOKIE, signed_in.session_token)
    by_key = await client.get("/api/v1/orders", headers=tenant.headers)
    by_cookie = await client.get("/api/v1/orders", headers={"X-Tenant-Id": tenant.id})
    without_header = await client.get("/api/v1/orders")
    one = await client.get(f"/api/v1/orders/{golden[0]}")
    assert by_cookie.status_code == without_header.status_code == one.status_code == 200
    assert by_cookie.content == without_header.content == by_key.content


# --- The production path: a pool connection, BEGIN ... COMMIT in one round trip ---------------


@asynccontextmanager
async def traced(url: str, trace: Path) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A connection as the read pool makes them, libpq's protocol trace written to ``trace``."""
    async with await psycopg.AsyncConnection.connect(
        libpq_url(url), autocommit=True, options="-c timezone=UTC"
    ) as connection:
        with trace.open("w") as output:
            connection.pgconn.trace(output.fileno())
            try:
                yield connection
            finally:
                connection.pgconn.untrace()


async def test_a_read_is_one_round_trip_with_the_tenant_set_in_its_transaction(
    fresh_database_url: str,
) -> None:
    engine = create_engine(fresh_database_url, pool_size=1)
    try:
        async with transaction(create_sessionmaker(engine)) as session:
            tenant = await make_tenant(session, "ecomlg-001")
            await upsert_orders(session, tenant.id, [varied_order(n) for n in range(1, 61)])
    finally:
        await engine.dispose()
    credentials = Credentials(
        bearer_key=tenant.api_key,
        tenant_header=tenant.id,
        session_token=None,
        csrf_header=None,
        changes_state=False,
    )
    with tempfile.TemporaryDirectory() as folder:
        trace = Path(folder) / "trace"
        async with traced(fresh_database_url, trace) as connection:
            body = await reads.list_orders_json(
                Reads.on_connection(connection),
                credentials,
                OrderListParams.model_validate({"q": "buyer"}),
            )
            setting = await connection.execute("SELECT current_setting('app.tenant_id', true)")
            assert (await setting.fetchone()) in ((None,), ("",))  # local to its transaction
        messages = [line.split("\t")[1:] for line in trace.read_text().splitlines()]
    # The read, up to its one Sync: BEGIN, the check setting the tenant, the query, COMMIT.
    read = messages[: messages.index(["F", "4", "Sync"]) + 1]
    parsed = [fields[3] for fields in read if fields[:1] == ["F"] and fields[2] == "Parse"]
    assert [statement.split()[1].strip('"') for statement in parsed] == [
        "BEGIN",
        "SELECT",
        "SELECT",
        "COMMIT",
    ]
    assert "set_config('app.tenant_id', keybuzz_tenant_of_api_key($1), true)" in parsed[1]
    assert "FROM orders o" in parsed[2]
    waits = [fields for fields in messages if fields[:1] == ["B"] and fields[2] == "ReadyForQuery"]
    assert len(waits) == 2  # one round trip for the read, one for SELECT current_setting
    page = conforms(body, OrderPage)
    assert len(page["items"]) == 50
    assert page["nextCursor"] is not None


async def test_the_pool_path_answers_errors_as_before(fresh_database_url: str) -> None:
    """As deployed (the runtime's pool, each request its own transaction): the same problems,
    and a revoked key is refused by the next request (no cache)."""
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    async with open_runtime(settings, database_url=fresh_database_url) as runtime:
        async with transaction(runtime.privileged_sessionmaker) as session:
            tenant = await make_tenant(session, "ecomlg-001")
            rival = await make_tenant(session, "rival-002")
            await upsert_orders(session, tenant.id, [varied_order(n) for n in range(1, 4)])
        async with api_client(runtime) as client:
            page = await _new_page(client, tenant, {"limit": 2})
            order_id = page["items"][0]["id"]
            one = await client.get(f"/api/v1/orders/{order_id}", headers=tenant.headers)
            assert conforms(one.content, OrderRead)["id"] == order_id
            events = await client.get(f"/api/v1/orders/{order_id}/events", headers=tenant.headers)
            assert events.json() == {"items": []}

            async def code(path: str, headers: dict[str, str]) -> tuple[int, str]:
                response = await client.get(path, headers=headers)
                assert response.headers["content-type"] == "application/problem+json"
                return response.status_code, response.json()["code"]

            other = {**rival.headers, "X-Tenant-Id": tenant.id}
            assert await code("/api/v1/orders", {}) == (401, "unauthenticated")
            assert await code("/api/v1/orders?cursor=zzz", {}) == (401, "unauthenticated")
            assert await code("/api/v1/orders?limit=500", {}) == (401, "unauthenticated")
            # No UUID, no route: nothing to authenticate for.
            assert await code("/api/v1/orders/not-an-id", {}) == (404, "not_found")
            unknown_key = {**tenant.headers, "Authorization": "Bearer kb_unknown"}
            assert await code("/api/v1/orders?cursor=zzz", unknown_key) == (
                401,
                "unauthenticated",
            )
            assert await code("/api/v1/orders", other) == (403, "tenant_forbidden")
            assert await code(f"/api/v1/orders/{order_id}", other) == (403, "tenant_forbidden")
            assert await code(f"/api/v1/orders/{order_id}", rival.headers) == (
                404,
                "order_not_found",
            )
            assert await code(f"/api/v1/orders/{order_id}/events", rival.headers) == (
                404,
                "order_not_found",
            )
            assert await code("/api/v1/orders?cursor=zzz", tenant.headers) == (
                400,
                "invalid_input",
            )
            assert await code("/api/v1/orders?q=ab%00c", tenant.headers) == (
                422,
                "validation_error",
            )
            async with transaction(runtime.privileged_sessionmaker) as session:
                await tenants.revoke_api_keys(session, tenant.id)
            assert await code("/api/v1/orders", tenant.headers) == (401, "unauthenticated")


async def test_a_failed_read_rolls_back_and_leaves_the_connection_usable(
    session: AsyncSession, tenant: TenantCredentials, fresh_database_url: str
) -> None:
    check, params = tenants.credential_check(
        Credentials(
            bearer_key=tenant.api_key, tenant_header=tenant.id, session_token=None,
            csrf_header=None, changes_state=False,
        )
    )  # fmt: skip

    def failing(tenant_id: str) -> Sql:
        division = "SELECT 1 / (count(*) - count(*)) FROM orders WHERE tenant_id = %(t)s"
        return Sql(division, {"t": tenant_id})

    reads = Reads.inside(await raw_connection(session))
    with pytest.raises(psycopg.errors.DivisionByZero):
        await reads.run(Sql(check, params), failing, tenant.id)
    # The test's transaction lives on.
    assert await upsert_orders(session, tenant.id, [varied_order(1)])

    async with await psycopg.AsyncConnection.connect(
        libpq_url(fresh_database_url), autocommit=True
    ) as connection:
        with pytest.raises(psycopg.errors.DivisionByZero):
            await Reads.on_connection(connection).run(Sql(check, params), failing, "any")
        assert connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
