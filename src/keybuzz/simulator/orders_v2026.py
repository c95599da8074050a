"""Orders API v2026-01-01 operations (``orders_2026-01-01.json``): searchOrders and getOrder.

A ``paginationToken`` must come back with every other parameter unchanged (``maxResultsPerPage``
and ``includedData`` may change) and expires 24 hours after it was issued
(``#/definitions/Pagination``).
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import QueryParams

from keybuzz.simulator.clock import iso
from keybuzz.simulator.errors import invalid_input, not_found
from keybuzz.simulator.gateway import Call
from keybuzz.simulator.orderbook import DateFamily, OrderFilter
from keybuzz.simulator.orders_v0 import ORDER_ID
from keybuzz.simulator.paging import fingerprint
from keybuzz.simulator.params import (
    DateNames,
    enum_list,
    marketplace_list,
    page_size,
    resolve_window,
)
from keybuzz.simulator.records import V2026_STATUS, Status
from keybuzz.simulator.render_v2026 import INCLUDED_DATA, View, order_v2026

Json = dict[str, Any]
NAMES = DateNames("createdAfter", "createdBefore", "lastUpdatedAfter", "lastUpdatedBefore")
FREE_BETWEEN_PAGES = frozenset({"paginationToken", "maxResultsPerPage", "includedData"})
TOKEN_LIFETIME = 24 * 3600
FULFILLED_BY = {"MERCHANT": "MFN", "AMAZON": "AFN"}


def _statuses(values: list[str] | None) -> frozenset[Status] | None:
    if values is None:
        return None
    return frozenset(status for status, name in V2026_STATUS.items() if name in values)


def _view(call: Call, query: QueryParams) -> View:
    included = enum_list(query, "includedData", INCLUDED_DATA) or []
    return View.of(included, call.simulator.settings.pii_roles)


def search_orders(call: Call, query: QueryParams) -> Json:
    view = _view(call, query)
    limit = page_size(query, "maxResultsPerPage")
    statuses = enum_list(query, "fulfillmentStatuses", sorted(set(V2026_STATUS.values())))
    fulfilled_by = enum_list(query, "fulfilledBy", tuple(FULFILLED_BY))
    marketplaces = marketplace_list(query, "marketplaceIds", call.seller.marketplaces)
    where = OrderFilter(
        marketplaces=frozenset(marketplaces) if marketplaces else None,
        statuses=_statuses(statuses),
        channels=frozenset(FULFILLED_BY[f] for f in fulfilled_by) if fulfilled_by else None,
    )
    digest = fingerprint(query, FREE_BETWEEN_PAGES)
    token = query.get("paginationToken")
    if token is not None:
        family, after, before, cursor = _resume(call, token, digest)
    else:
        window = resolve_window(query, NAMES, call.now)
        family, after, before, cursor = window.family, window.after, window.before, None
    page = call.seller.book.page(family, after, before, where, call.now, limit, cursor)
    body: Json = {"orders": [order_v2026(order, call.now, view) for order in page.orders]}
    if page.next_cursor is not None:
        state = {
            "s": call.seller.seller_id,
            "f": digest,
            "w": [family.value, after, before],
            "c": list(page.next_cursor),
            "i": call.now,
        }
        body["pagination"] = {"nextToken": call.simulator.page_tokens.encode(state)}
    bound = "createdBefore" if family is DateFamily.CREATED else "lastUpdatedBefore"
    body[bound] = iso(before)
    return body


def _resume(call: Call, token: str, digest: str) -> tuple[DateFamily, int, int, tuple[int, int]]:
    state = call.simulator.page_tokens.decode(token)
    if state is None or state.get("s") != call.seller.seller_id:
        raise invalid_input("Invalid paginationToken.")
    if state["f"] != digest:
        raise invalid_input(
            "The paginationToken must be sent with the same parameters as the request that "
            "returned it (only maxResultsPerPage and includedData may change)."
        )
    if call.now - int(state["i"]) > TOKEN_LIFETIME:
        raise invalid_input("The paginationToken has expired.")
    family, after, before = state["w"]
    cursor = state["c"]
    return DateFamily(family), int(after), int(before), (int(cursor[0]), int(cursor[1]))


def get_order(call: Call, order_id: str, query: QueryParams) -> Json:
    view = _view(call, query)
    if not ORDER_ID.match(order_id):
        raise invalid_input(f"Invalid orderId: {order_id}.")
    order = call.seller.book.get(order_id, call.now)
    if order is None:
        raise not_found(f"Order {order_id} was not found.")
    return {"order": order_v2026(order, call.now, view)}
