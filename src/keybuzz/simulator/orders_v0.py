"""Orders API v0 operations (``ordersV0.json``): getOrders with NextToken, getOrder,
getOrderItems with NextToken, and the three PII sub-resources.

A NextToken carries the whole original search: with it, only ``MarketplaceIds`` (schema-required)
is needed and other filters in the request are ignored, as the model describes.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from starlette.datastructures import QueryParams

from keybuzz.simulator.clock import iso
from keybuzz.simulator.errors import invalid_input, not_found
from keybuzz.simulator.gateway import Call
from keybuzz.simulator.orderbook import DateFamily, DeliveryBounds, OrderFilter
from keybuzz.simulator.params import (
    DateNames,
    csv_list,
    date_param,
    enum_list,
    page_size,
    required_marketplaces,
    resolve_window,
)
from keybuzz.simulator.records import AFN, MFN, SHIPPING_ADDRESS_STATUSES, Order, Status
from keybuzz.simulator.render_v0 import (
    PiiAccess,
    buyer_info_v0,
    item_buyer_info_v0,
    order_item_v0,
    order_v0,
    shipping_address_v0,
)

Json = dict[str, Any]
NAMES = DateNames("CreatedAfter", "CreatedBefore", "LastUpdatedAfter", "LastUpdatedBefore")
ORDER_ID = re.compile(r"^\d{3}-\d{7}-\d{7}$")
NEXT_TOKEN_ERROR = "We could not decode your NextToken. Please check the NextToken and try again."
_EXCLUSIVE_WITH_SELLER_ORDER_ID = (
    "FulfillmentChannels",
    "OrderStatuses",
    "PaymentMethods",
    "LastUpdatedAfter",
    "LastUpdatedBefore",
    "BuyerEmail",
)
_DELIVERY_FILTERS = {
    "earliest_after": "EarliestDeliveryDateAfter",
    "earliest_before": "EarliestDeliveryDateBefore",
    "latest_after": "LatestDeliveryDateAfter",
    "latest_before": "LatestDeliveryDateBefore",
}
# Filters on programs the simulated sellers do not use: any value matches no order.
_NO_MATCH_FILTERS = (
    "EasyShipShipmentStatuses",
    "StoreChainStoreId",
    "ActualFulfillmentSupplySourceId",
)


@dataclass(frozen=True, slots=True)
class Search:
    family: str | None
    after: int
    before: int
    marketplaces: list[str]
    statuses: list[str] | None
    channels: list[str] | None
    order_ids: list[str] | None
    seller_order_id: str | None
    buyer_email: str | None
    matches_nothing: bool
    delivery: dict[str, float] | None

    def where(self) -> OrderFilter:
        return OrderFilter(
            marketplaces=frozenset(self.marketplaces),
            statuses=frozenset(Status(s) for s in self.statuses) if self.statuses else None,
            channels=frozenset(self.channels) if self.channels else None,
            order_ids=frozenset(self.order_ids) if self.order_ids else None,
            seller_order_id=self.seller_order_id,
            buyer_email=self.buyer_email,
            delivery=DeliveryBounds(**self.delivery) if self.delivery else None,
        )


def _search_from_query(query: QueryParams, marketplaces: list[str], now: int) -> Search:
    if query.get("SellerOrderId") is not None:
        clashing = [name for name in _EXCLUSIVE_WITH_SELLER_ORDER_ID if name in query]
        if clashing:
            raise invalid_input(f"SellerOrderId cannot be combined with {', '.join(clashing)}.")
    order_ids = csv_list(query, "AmazonOrderIds")
    if order_ids is not None and len(order_ids) > 50:
        raise invalid_input("AmazonOrderIds accepts at most 50 values.")
    statuses = enum_list(query, "OrderStatuses", [s.value for s in Status])
    channels = enum_list(query, "FulfillmentChannels", (AFN, MFN))
    payment = enum_list(query, "PaymentMethods", ("COD", "CVS", "Other"))
    invoice = csv_list(query, "ElectronicInvoiceStatuses")
    delivery = {
        field: value
        for field, name in _DELIVERY_FILTERS.items()
        if (value := date_param(query, name)) is not None
    }
    matches_nothing = (
        any(name in query for name in _NO_MATCH_FILTERS)
        or query.get("IsISPU", "false").lower() == "true"
        or (payment is not None and "Other" not in payment)
        or (invoice is not None and "NotRequired" not in invoice)
    )
    has_dates = any(name in query for name in asdict(NAMES).values())
    if order_ids is not None and not has_dates:
        family, after, before = None, 0, now
    else:
        window = resolve_window(query, NAMES, now)
        family, after, before = window.family.value, window.after, window.before
    return Search(
        family=family,
        after=after,
        before=before,
        marketplaces=marketplaces,
        statuses=statuses,
        channels=channels,
        order_ids=order_ids,
        seller_order_id=query.get("SellerOrderId"),
        buyer_email=query.get("BuyerEmail"),
        matches_nothing=matches_nothing,
        delivery=delivery or None,
    )


def get_orders(call: Call, query: QueryParams) -> Json:
    seller = call.seller
    marketplaces = required_marketplaces(query, "MarketplaceIds", seller.marketplaces)
    cursor = None
    next_token = query.get("NextToken")
    if next_token is not None:
        search, cursor = _resume(call, next_token)
    else:
        search = _search_from_query(query, marketplaces, call.now)
    limit = page_size(query, "MaxResultsPerPage")
    orders, next_cursor = _run(call, search, limit, cursor)
    access = _pii(call, "/orders/v0/orders")
    payload: Json = {"Orders": [order_v0(order, call.now, access) for order in orders]}
    if next_cursor is not None:
        state = {"s": seller.seller_id, "q": asdict(search), "c": list(next_cursor)}
        payload["NextToken"] = call.simulator.page_tokens.encode(state)
    if search.family == DateFamily.CREATED:
        payload["CreatedBefore"] = iso(search.before)
    elif search.family == DateFamily.UPDATED:
        payload["LastUpdatedBefore"] = iso(search.before)
    return {"payload": payload}


def _resume(call: Call, token: str) -> tuple[Search, tuple[int, int]]:
    state = call.simulator.page_tokens.decode(token)
    if state is None or state.get("s") != call.seller.seller_id or "q" not in state:
        raise invalid_input(NEXT_TOKEN_ERROR)
    cursor = state["c"]
    return Search(**state["q"]), (int(cursor[0]), int(cursor[1]))


def _run(
    call: Call, search: Search, limit: int, cursor: tuple[int, int] | None
) -> tuple[list[Order], tuple[int, int] | None]:
    if search.matches_nothing:
        return [], None
    book = call.seller.book
    if search.family is None:
        found = [book.get(order_id, call.now) for order_id in search.order_ids or ()]
        where = search.where()
        orders = [o for o in found if o is not None and where.accepts(o, call.now)]
        return sorted(orders, key=lambda o: (o.created, o.position)), None
    family = DateFamily(search.family)
    page = book.page(family, search.after, search.before, search.where(), call.now, limit, cursor)
    return page.orders, page.next_cursor


def _pii(call: Call, path: str) -> PiiAccess:
    granted = call.granted_elements("GET", path)
    return PiiAccess(
        buyer_info="buyerInfo" in granted, shipping_address="shippingAddress" in granted
    )


def _order(call: Call, order_id: str) -> Order:
    if not ORDER_ID.match(order_id):
        raise invalid_input(f"Invalid AmazonOrderId: {order_id}.")
    order = call.seller.book.get(order_id, call.now)
    if order is None:
        raise not_found(f"Order {order_id} was not found.")
    return order


def get_order(call: Call, order_id: str) -> Json:
    order = _order(call, order_id)
    access = _pii(call, f"/orders/v0/orders/{order_id}")
    return {"payload": order_v0(order, call.now, access)}


def _item_page(call: Call, order: Order, query: QueryParams) -> tuple[int, str | None]:
    """First item index of the page asked for, and the NextToken of the page after it."""
    start = 0
    token = query.get("NextToken")
    if token is not None:
        state = call.simulator.page_tokens.decode(token)
        expected = {"o": order.order_id, "s": call.seller.seller_id}
        if state is None or any(state.get(key) != value for key, value in expected.items()):
            raise invalid_input(NEXT_TOKEN_ERROR)
        start = int(state["i"])
    end = start + call.simulator.settings.order_items_page_size
    if end >= len(order.items):
        return start, None
    state = {"o": order.order_id, "s": call.seller.seller_id, "i": end}
    return start, call.simulator.page_tokens.encode(state)


def get_order_items(call: Call, order_id: str, query: QueryParams) -> Json:
    order = _order(call, order_id)
    access = _pii(call, f"/orders/v0/orders/{order_id}/orderItems")
    start, next_token = _item_page(call, order, query)
    items = order.items[start : start + call.simulator.settings.order_items_page_size]
    payload: Json = {
        "AmazonOrderId": order.order_id,
        "OrderItems": [order_item_v0(order, item, call.now, access) for item in items],
    }
    if next_token is not None:
        payload["NextToken"] = next_token
    return {"payload": payload}


def _full_access(call: Call, path: str) -> bool:
    """An RDT for a PII sub-resource grants all of it; a plain access token none of it."""
    return any(resource.covers("GET", path) for resource in call.token.resources or ())


def get_order_address(call: Call, order_id: str) -> Json:
    order = _order(call, order_id)
    full = _full_access(call, f"/orders/v0/orders/{order_id}/address")
    status = order.status_at(call.now)
    payload: Json = {"AmazonOrderId": order.order_id}
    if order.address.company is not None and full:
        payload["BuyerCompanyName"] = order.address.company
    if status in SHIPPING_ADDRESS_STATUSES:
        access = PiiAccess(shipping_address=full)
        payload["ShippingAddress"] = shipping_address_v0(order, status, call.now, access)
    return {"payload": payload}


def get_order_buyer_info(call: Call, order_id: str) -> Json:
    order = _order(call, order_id)
    full = _full_access(call, f"/orders/v0/orders/{order_id}/buyerInfo")
    info = buyer_info_v0(order, order.status_at(call.now), PiiAccess(buyer_info=full))
    return {"payload": {"AmazonOrderId": order.order_id, **info}}


def get_order_items_buyer_info(call: Call, order_id: str, query: QueryParams) -> Json:
    order = _order(call, order_id)
    full = _full_access(call, f"/orders/v0/orders/{order_id}/orderItems/buyerInfo")
    start, next_token = _item_page(call, order, query)
    items = order.items[start : start + call.simulator.settings.order_items_page_size]
    access = PiiAccess(buyer_info=full)
    payload: Json = {
        "AmazonOrderId": order.order_id,
        "OrderItems": [
            {"OrderItemId": item.order_item_id, **item_buyer_info_v0(order, item, access)}
            for item in items
        ],
    }
    if next_token is not None:
        payload["NextToken"] = next_token
    return {"payload": payload}
