"""Amazon's own sandbox examples (``x-amzn-api-sandbox`` in the official models) fed through
the client over ``httpx.MockTransport``, parsed and normalised into ``OrderRecord``."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from keybuzz.amazon import models_v0, models_v2026, normalize
from keybuzz.amazon.client import SpApiClient
from keybuzz.amazon.errors import AmazonMalformedResponse
from keybuzz.amazon.flatfile import OrderReportRow
from keybuzz.amazon.tokens import BULK_ORDER_RESOURCES
from keybuzz.orders.records import DeliveryStatus, ItemRecord, OrderStatus
from keybuzz.simulator.spec import load_model, operation
from tests.amazon.conftest import since

MockConnect = Callable[[Callable[[httpx.Request], httpx.Response]], SpApiClient]
V0, V2026 = "ordersV0.json", "orders_2026-01-01.json"


def example(model: str, operation_id: str, **parameters: Any) -> Any:
    """The response of the model's 200 sandbox example whose request has these parameters."""
    for found in operation(model, operation_id).sandbox:
        values = {name: value for name, value in found.parameters.items()}
        if found.status in (200, 202) and all(values.get(k) == v for k, v in parameters.items()):
            return copy.deepcopy(found.response)
    raise LookupError(f"{model}#{operation_id} has no example for {parameters}")


def serving(
    *answers: tuple[str, Any],
) -> tuple[Callable[[httpx.Request], httpx.Response], list[httpx.Request]]:
    """A handler answering each ``(path, body)`` in turn, and the requests it saw."""
    queue = list(answers)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        path, body = queue.pop(0)
        assert request.url.path == path
        return httpx.Response(200, json=body)

    return handler, seen


async def test_v0_get_orders_example_with_epoch_created_before(mock_connect: MockConnect) -> None:
    body = example(V0, "getOrders", CreatedAfter="TEST_CASE_200")
    handler, _ = serving(("/orders/v0/orders", body))
    client = mock_connect(handler)

    pages = [
        page
        async for page in client.orders_v0.get_orders(
            marketplace_ids=["ATVPDKIKX0DER"], created_after=since(), with_pii=False
        )
    ]

    assert len(pages) == 1
    assert pages[0].created_before == datetime(2019, 9, 26, 18, 16, 22, 42000, tzinfo=UTC)
    records = [normalize.from_v0(order) for order in pages[0].orders]
    assert [r.external_order_id for r in records] == ["902-1845936-5435065", "902-8745147-1934268"]
    first = records[0]
    assert (first.order_status, first.delivery_status) == (
        OrderStatus.CONFIRMED,
        DeliveryStatus.PREPARING,
    )
    assert (first.currency, first.total_amount) == ("USD", Decimal("11.01"))
    assert first.order_ref == "902-1845936-5435065"
    assert first.marketplace == "amazon"
    assert first.marketplace_id == "ATVPDKIKX0DER"
    assert first.fulfillment_channel == "MFN"
    assert first.latest_ship_date == datetime(1970, 1, 19, 4, 5, 13, tzinfo=UTC)
    assert first.latest_delivery_date == datetime(1970, 1, 19, 4, 15, 17, tzinfo=UTC)
    assert first.external_updated_at == datetime(1970, 1, 19, 3, 58, 32, tzinfo=UTC)
    assert first.items is None
    assert (first.customer_name, first.customer_email, first.shipping_address) == (None,) * 3


async def test_v0_next_token_example_is_followed_to_the_last_page(
    mock_connect: MockConnect,
) -> None:
    first = example(V0, "getOrders", CreatedAfter="TEST_CASE_200_NEXT_TOKEN")
    last = example(
        V0,
        "getOrders",
        CreatedAfter="TEST_CASE_200_NEXT_TOKEN",
        NextToken="2YgYW55IGNhcm5hbCBwbGVhc3VyZS4",
    )
    handler, seen = serving(("/orders/v0/orders", first), ("/orders/v0/orders", last))
    client = mock_connect(handler)

    pages = [
        page
        async for page in client.orders_v0.get_orders(
            marketplace_ids=["ATVPDKIKX0DER"], created_after=since(), with_pii=False
        )
    ]

    assert [p.position is None for p in pages] == [False, True]
    assert seen[1].url.params["NextToken"] == "2YgYW55IGNhcm5hbCBwbGVhc3VyZS4"
    assert seen[1].url.params["CreatedAfter"] == seen[0].url.params["CreatedAfter"]
    assert seen[1].url.params["MarketplaceIds"] == "ATVPDKIKX0DER"
    pending = normalize.from_v0(pages[1].orders[0])
    assert (pending.order_status, pending.delivery_status, pending.total_amount) == (
        OrderStatus.PENDING,
        None,
        None,
    )


async def test_v0_order_and_items_examples(mock_connect: MockConnect) -> None:
    order_body = example(V0, "getOrder", orderId="TEST_CASE_IBA_200")
    items_body = example(V0, "getOrderItems", orderId="TEST_CASE_200")
    handler, _ = serving(
        ("/orders/v0/orders/921-3175655-0452641", order_body),
        ("/orders/v0/orders/921-3175655-0452641/orderItems", items_body),
    )
    client = mock_connect(handler)

    order = await client.orders_v0.get_order("921-3175655-0452641", with_pii=False)
    items = await client.orders_v0.get_order_items("921-3175655-0452641", with_pii=False)
    record = normalize.from_v0(order, items)

    assert record.order_date == datetime(2019, 5, 7, 15, 42, 57, 58000, tzinfo=UTC)
    assert (record.order_status, record.delivery_status) == (
        OrderStatus.SHIPPED,
        DeliveryStatus.SHIPPED,
    )
    assert (record.currency, record.total_amount, record.fulfillment_channel) == (
        "EUR",
        Decimal("100.00"),
        "AFN",
    )
    assert record.items == (
        ItemRecord(
            external_item_id="05015851154158",
            quantity=1,
            sku="NABetaASINB00551Q3CS",
            asin="B00551Q3CS",
            title="B00551Q3CS [Card Book]",
            unit_price=Decimal("10.00"),
        ),
    )


def test_v0_item_price_is_a_line_total() -> None:
    body = example(V0, "getOrderItems", orderId="TEST_CASE_200")["payload"]["OrderItems"][0]
    body.update(QuantityOrdered=3, ItemPrice={"CurrencyCode": "USD", "Amount": "10.00"})
    order = models_v0.Order.model_validate(
        example(V0, "getOrder", orderId="TEST_CASE_200")["payload"]
    )

    (item,) = normalize.from_v0(order, [models_v0.OrderItem.model_validate(body)]).items or ()

    assert (item.quantity, item.unit_price) == (3, Decimal("3.33"))


async def test_v2026_search_examples(mock_connect: MockConnect) -> None:
    japan = example(V2026, "searchOrders", createdAfter="2024-12-25T00:00:00Z")
    # The sandbox pairs the UK example with another token; here it is simply the next page.
    uk = example(V2026, "searchOrders", createdAfter="2024-12-23T00:00:00Z")
    handler, seen = serving(("/orders/2026-01-01/orders", japan), ("/orders/2026-01-01/orders", uk))
    client = mock_connect(handler)

    pages = [
        page
        async for page in client.orders.search_orders(
            created_after=datetime(2024, 12, 25, tzinfo=UTC), marketplace_ids=["A1VC38T7YXB528"]
        )
    ]

    assert seen[1].url.params["paginationToken"] == "2YgYW55IGNhcm5hbCBwbGVhc3VyZS4"
    assert seen[1].url.params["createdAfter"] == "2024-12-25T00:00:00Z"
    assert seen[0].url.params["includedData"] == "BUYER,RECIPIENT,PROCEEDS,FULFILLMENT,PACKAGES"
    assert pages[0].created_before == datetime(2024, 12, 25, 3, tzinfo=UTC)
    record = normalize.from_v2026(pages[0].orders[0])
    assert record.external_order_id == "250-1234567-8901234"
    assert record.order_ref == "JP-ORDER-2024-001"
    assert (record.order_status, record.delivery_status) == (
        OrderStatus.SHIPPED,
        DeliveryStatus.SHIPPED,
    )
    assert (record.currency, record.total_amount) == ("JPY", Decimal("19940"))
    assert (record.customer_name, record.customer_email) == (
        "John Smith",
        "buyer-email@marketplace.amazon.co.jp",
    )
    assert record.shipping_address == {
        "name": "John Smith",
        "addressLine1": "123 Business Park",
        "addressLine2": "Suite 456",
        "city": "Tokyo",
        "postalCode": "150-0002",
        "countryCode": "JP",
        "addressType": "RESIDENTIAL",
    }
    assert record.fulfillment_channel == "AFN"
    assert record.latest_ship_date == datetime(2024, 12, 25, 23, 59, 59, tzinfo=UTC)
    assert record.latest_delivery_date is None
    assert [(i.quantity, i.unit_price, i.sku) for i in record.items or ()] == [
        (1, Decimal("5980"), "ECHO-DOT-4-JP-CHARCOAL"),
        (2, Decimal("6980"), "FIRE-TV-4K-MAX-JP"),
    ]
    uk_record = normalize.from_v2026(pages[1].orders[0])
    assert uk_record.shipping_address is not None
    assert "addressLine3" not in uk_record.shipping_address
    assert uk_record.shipping_address["districtOrCounty"] == "Greater London"


@pytest.mark.parametrize(
    ("order_id", "status", "customer"),
    [
        ("171-9876543-2109876", OrderStatus.CONFIRMED, "Maria Silva Santos"),
        ("028-1234567-8901234", OrderStatus.SHIPPED, "Mehmet Yilmaz"),
        ("114-9876543-1234567", OrderStatus.CONFIRMED, None),
    ],
)
async def test_v2026_get_order_examples(
    mock_connect: MockConnect, order_id: str, status: OrderStatus, customer: str | None
) -> None:
    body = example(V2026, "getOrder", orderId=order_id)
    handler, seen = serving((f"/orders/2026-01-01/orders/{order_id}", body))
    client = mock_connect(handler)

    record = normalize.from_v2026(await client.orders.get_order(order_id))

    assert seen[0].url.params["includedData"] == "BUYER,RECIPIENT,PROCEEDS,FULFILLMENT,PACKAGES"
    assert (record.external_order_id, record.order_status, record.customer_name) == (
        order_id,
        status,
        customer,
    )
    first = body["order"]["orderItems"][0]
    assert record.items is not None
    assert record.items[0].unit_price == Decimal(first["product"]["price"]["unitPrice"]["amount"])


async def test_tokens_sellers_and_reports_examples(mock_connect: MockConnect) -> None:
    handler, seen = serving(
        (
            "/tokens/2021-03-01/restrictedDataToken",
            example("tokens_2021-03-01.json", "createRestrictedDataToken"),
        ),
        (
            "/sellers/v1/marketplaceParticipations",
            example("sellers.json", "getMarketplaceParticipations"),
        ),
        ("/reports/2021-06-30/reports", example("reports_2021-06-30.json", "createReport")),
        ("/reports/2021-06-30/reports/ID323", example("reports_2021-06-30.json", "getReport")),
        (
            "/reports/2021-06-30/documents/0356cf79-b8b0-4226-b4b9-0ee058ea5760",
            example("reports_2021-06-30.json", "getReportDocument"),
        ),
    )
    client = mock_connect(handler)

    rdt = await client.tokens.create_restricted_data_token(
        restricted_resources=BULK_ORDER_RESOURCES
    )
    participations = await client.sellers.get_marketplace_participations()
    report_id = await client.reports.create_report(
        report_type="GET_MERCHANT_LISTINGS_ALL_DATA", marketplace_ids=["A1PA6795UKMFR9"]
    )
    report = await client.reports.get_report(report_id)
    document = await client.reports.get_report_document("0356cf79-b8b0-4226-b4b9-0ee058ea5760")

    assert rdt.expires_in == 3600
    assert participations[0].marketplace.id == "ATVPDKIKX0DER"
    assert participations[0].store_name == "BestSellerStore"
    assert report_id == "ID323"
    assert report.processing_status == "IN_PROGRESS"
    assert document.compression_algorithm is None
    assert seen[0].read().startswith(b'{"restrictedResources":[{"method":"GET","path":"/orders')


V0_STATUSES = {
    "PendingAvailability": (OrderStatus.PENDING, None),
    "Pending": (OrderStatus.PENDING, None),
    "Unshipped": (OrderStatus.CONFIRMED, DeliveryStatus.PREPARING),
    "PartiallyShipped": (OrderStatus.CONFIRMED, DeliveryStatus.PREPARING),
    "Shipped": (OrderStatus.SHIPPED, DeliveryStatus.SHIPPED),
    "InvoiceUnconfirmed": (OrderStatus.SHIPPED, DeliveryStatus.SHIPPED),
    "Canceled": (OrderStatus.CANCELLED, None),
    "Unfulfillable": (OrderStatus.CANCELLED, None),
}
V2026_STATUSES = {
    "PENDING_AVAILABILITY": (OrderStatus.PENDING, None),
    "PENDING": (OrderStatus.PENDING, None),
    "UNSHIPPED": (OrderStatus.CONFIRMED, DeliveryStatus.PREPARING),
    "PARTIALLY_SHIPPED": (OrderStatus.CONFIRMED, DeliveryStatus.PREPARING),
    "SHIPPED": (OrderStatus.SHIPPED, DeliveryStatus.SHIPPED),
    "CANCELLED": (OrderStatus.CANCELLED, None),
    "UNFULFILLABLE": (OrderStatus.CANCELLED, None),
}


def test_every_amazon_status_has_one_mapping() -> None:
    v0_listed = load_model(V0)["definitions"]["Order"]["properties"]["OrderStatus"]["enum"]
    v2026_listed = load_model(V2026)["definitions"]["FulfillmentStatus"]["enum"]

    assert sorted(v0_listed) == sorted(V0_STATUSES)
    assert sorted(v2026_listed) == sorted(V2026_STATUSES)
    for status, expected in {**V0_STATUSES, **V2026_STATUSES}.items():
        assert normalize.map_status(status, "x") == expected
    assert normalize.map_status("Cancelled", "x") == (OrderStatus.CANCELLED, None)
    with pytest.raises(AmazonMalformedResponse, match="unknown order status 'Teleported'"):
        normalize.map_status("Teleported", "111-1111111-1111111")


def v2026_order(**changes: Any) -> models_v2026.Order:
    body = example(V2026, "getOrder", orderId="028-1234567-8901234")["order"]
    body.update(changes)
    return models_v2026.Order.model_validate(body)


def package(status: str, detailed: str | None = None, shipped: str = "2025-03-17T10:00:00Z") -> Any:
    return {
        "packageReferenceId": "1",
        "packageStatus": {"status": status, **({"detailedStatus": detailed} if detailed else {})},
        "carrier": "Yurtici",
        "trackingNumber": "TRK1",
        "shipTime": shipped,
    }


def test_packages_tell_where_a_shipped_order_is() -> None:
    delivered = normalize.from_v2026(
        v2026_order(
            packages=[package("DELIVERED"), package("DELIVERED", shipped="2025-03-16T09:00:00Z")]
        )
    )
    moving = normalize.from_v2026(
        v2026_order(packages=[package("DELIVERED"), package("IN_TRANSIT")])
    )
    out = normalize.from_v2026(v2026_order(packages=[package("IN_TRANSIT", "OUT_FOR_DELIVERY")]))
    lost = normalize.from_v2026(v2026_order(packages=[package("IN_TRANSIT", "LOST")]))

    assert (delivered.order_status, delivered.delivery_status) == (
        OrderStatus.DELIVERED,
        DeliveryStatus.DELIVERED,
    )
    assert (delivered.carrier, delivered.tracking_code) == ("Yurtici", "TRK1")
    assert delivered.shipped_at == datetime(2025, 3, 16, 9, tzinfo=UTC)
    assert delivered.delivered_at is None
    assert (moving.order_status, moving.delivery_status) == (
        OrderStatus.SHIPPED,
        DeliveryStatus.IN_TRANSIT,
    )
    assert out.delivery_status is DeliveryStatus.OUT_FOR_DELIVERY
    assert lost.delivery_status is DeliveryStatus.LOST


def test_a_v2026_order_without_fulfillment_data_cannot_be_normalised() -> None:
    order = v2026_order(fulfillment=None)

    with pytest.raises(ValueError, match="includedData=FULFILLMENT"):
        normalize.from_v2026(order)


def report_row(**changes: Any) -> OrderReportRow:
    values: dict[str, Any] = {
        "amazon_order_id": "403-1234567-1234567",
        "merchant_order_id": None,
        "purchase_date": datetime(2026, 5, 1, 10, tzinfo=UTC),
        "last_updated_date": datetime(2026, 5, 2, 10, tzinfo=UTC),
        "order_status": "Shipped",
        "fulfillment_channel": "Amazon",
        "sales_channel": "Amazon.fr",
        "ship_service_level": "Standard",
        "product_name": "Plaid",
        "sku": "KBZ-1",
        "asin": "B0AAAAAAAA",
        "item_status": "Shipped",
        "quantity": 2,
        "currency": "EUR",
        "item_price": Decimal("40.00"),
        "item_tax": Decimal("6.67"),
        "shipping_price": None,
        "shipping_tax": None,
        "gift_wrap_price": None,
        "gift_wrap_tax": None,
        "item_promotion_discount": None,
        "ship_promotion_discount": None,
        "ship_city": "Lyon",
        "ship_state": None,
        "ship_postal_code": "69001",
        "ship_country": "FR",
        "promotion_ids": None,
        "is_business_order": False,
        "purchase_order_number": None,
        "price_designation": None,
    }
    values.update(changes)
    return OrderReportRow(**values)


def test_report_rows_become_one_order_without_what_the_report_lacks() -> None:
    rows = [
        report_row(),
        report_row(sku="KBZ-2", quantity=1, item_price=Decimal("9.99")),
        report_row(
            sku="KBZ-1",
            quantity=0,
            item_price=None,
            last_updated_date=datetime(2026, 5, 3, tzinfo=UTC),
        ),
    ]

    record = normalize.from_report_rows(rows)

    assert (record.external_order_id, record.order_ref, record.marketplace_id) == (
        "403-1234567-1234567",
        "403-1234567-1234567",
        "A13V1IB3VIYZZH",
    )
    assert record.external_updated_at == datetime(2026, 5, 3, tzinfo=UTC)
    assert (record.fulfillment_channel, record.currency) == ("AFN", "EUR")
    assert record.shipping_address == {"city": "Lyon", "postalCode": "69001", "countryCode": "FR"}
    assert (record.customer_name, record.customer_email, record.total_amount) == (None,) * 3
    assert (record.latest_ship_date, record.latest_delivery_date) == (None, None)
    assert [(i.external_item_id, i.quantity, i.unit_price) for i in record.items or ()] == [
        ("KBZ-1", 2, Decimal("20.00")),
        ("KBZ-2", 1, Decimal("9.99")),
        ("KBZ-1#2", 0, None),
    ]
