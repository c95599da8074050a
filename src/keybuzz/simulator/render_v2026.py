"""Orders API v2026-01-01 views (``orders_2026-01-01.json#/definitions/Order``) of the records.

Without ``includedData`` only the basics come back (ids, times, sales channel, items with their
product). PII follows the roles of spapi.md §2.5: no restricted data token, but the app's roles,
the fulfillment channel, the status and (for buyer names) the country decide.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from keybuzz.simulator.clock import iso
from keybuzz.simulator.money import money_v2026
from keybuzz.simulator.records import (
    PRE_PAYMENT,
    SHIPPED_STATUSES,
    SHIPPING_ADDRESS_STATUSES,
    V2026_STATUS,
    Item,
    Order,
    Status,
    is_priced,
)

Json = dict[str, Any]
INCLUDED_DATA = (
    "BUYER",
    "RECIPIENT",
    "PROCEEDS",
    "EXPENSE",
    "PROMOTION",
    "CANCELLATION",
    "FULFILLMENT",
    "PACKAGES",
    "TAX",
    "PAYMENT",
    "FULFILLMENT_ORDERS",
)
D2C = "DIRECT_TO_CONSUMER_SHIPPING"
TAX_ROLES = frozenset({"TAX_INVOICING", "TAX_REMITTANCE"})
# In these countries the tax roles do not grant the buyer's name (access-orders-pii page).
NO_NAME_BY_TAX_ROLE = frozenset({"US", "JP", "SG"})
_SERVICE_LEVELS = {
    "Standard": "STANDARD",
    "Expedited": "EXPEDITED",
    "NextDay": "NEXT_DAY",
    "SameDay": "SAME_DAY",
}


@dataclass(frozen=True, slots=True)
class View:
    included: frozenset[str]
    roles: frozenset[str]

    @classmethod
    def of(cls, included: Collection[str], roles: Collection[str]) -> View:
        return cls(frozenset(included), frozenset(roles))


EVERYTHING = View.of(INCLUDED_DATA, [D2C, *TAX_ROLES])


def order_v2026(order: Order, now: int, view: View) -> Json:
    status = order.status_at(now)
    body: Json = {
        "orderId": order.order_id,
        "createdTime": iso(order.created),
        "lastUpdatedTime": iso(order.last_update_at(now)),
        "salesChannel": {
            "channelName": "AMAZON",
            "marketplaceId": order.marketplace.id,
            "marketplaceName": order.marketplace.name,
        },
    }
    if order.seller_order_id != order.order_id:
        body["orderAliases"] = [{"aliasId": order.seller_order_id, "aliasType": "SELLER_ORDER_ID"}]
    programs = _programs(order)
    if programs:
        body["programs"] = programs
    included = view.included
    if "BUYER" in included:
        body["buyer"] = _buyer(order, status, view.roles)
    if "RECIPIENT" in included and status in SHIPPING_ADDRESS_STATUSES:
        body["recipient"] = {"deliveryAddress": _address(order, status, now, view.roles)}
    if "PROCEEDS" in included and is_priced(status):
        body["proceeds"] = _order_proceeds(order)
    if "FULFILLMENT" in included:
        body["fulfillment"] = _fulfillment(order, status)
    body["orderItems"] = [_item(order, item, status, view) for item in order.items]
    if "PACKAGES" in included and not order.is_afn:
        shipped_at = order.first_shipment_at(now)
        if shipped_at is not None:
            body["packages"] = [_package(order, status, shipped_at, now)]
    return body


def _programs(order: Order) -> list[str]:
    programs = []
    if order.is_prime:
        programs.append("PRIME")
    if order.is_business:
        programs.append("AMAZON_BUSINESS")
    if order.is_preorder:
        programs.append("PREORDER")
    return programs


def _pii_status(status: Status) -> bool:
    return V2026_STATUS[status] in ("UNSHIPPED", "PARTIALLY_SHIPPED", "SHIPPED")


def buyer_name_allowed(order: Order, status: Status, roles: frozenset[str]) -> bool:
    if not _pii_status(status):
        return False
    tax_grants = bool(roles & TAX_ROLES) and order.marketplace.code not in NO_NAME_BY_TAX_ROLE
    if order.is_afn:
        return tax_grants
    return tax_grants or D2C in roles


def buyer_email_allowed(order: Order, status: Status, roles: frozenset[str]) -> bool:
    return D2C in roles and not order.is_afn and _pii_status(status)


def _buyer(order: Order, status: Status, roles: frozenset[str]) -> Json:
    buyer: Json = {}
    if buyer_name_allowed(order, status, roles):
        buyer["buyerName"] = order.buyer_name
    if buyer_email_allowed(order, status, roles):
        buyer["buyerEmail"] = order.buyer_email
    if order.address.company is not None:
        buyer["buyerCompanyName"] = order.address.company
    if order.purchase_order_number is not None:
        buyer["buyerPurchaseOrderNumber"] = order.purchase_order_number
    return buyer


def _address(order: Order, status: Status, now: int, roles: frozenset[str]) -> Json:
    address = order.address
    body: Json = {
        "city": address.city,
        "stateOrRegion": address.region,
        "countryCode": address.country,
        "addressType": "COMMERCIAL" if address.commercial else "RESIDENTIAL",
    }
    if address.company is not None:
        body["companyName"] = address.company
    if D2C in roles and _pii_status(status):
        body["name"] = address.name
        body["addressLine1"] = address.line1
        if address.line2 is not None:
            body["addressLine2"] = address.line2
        body["postalCode"] = address.postal_code
        if order.phone_visible(status, now):
            body["phone"] = address.phone
    return body


def _order_proceeds(order: Order) -> Json:
    market = order.marketplace
    item_total = sum(item.line_total for item in order.items)
    shipping = sum(item.shipping_price for item in order.items)
    discount = sum(item.promotion_discount + item.shipping_discount for item in order.items)
    breakdowns = [{"type": "ITEM", "subtotal": money_v2026(item_total, market)}]
    if shipping:
        breakdowns.append({"type": "SHIPPING", "subtotal": money_v2026(shipping, market)})
    if discount:
        breakdowns.append({"type": "DISCOUNT", "subtotal": money_v2026(-discount, market)})
    return {"grandTotal": money_v2026(order.total(), market), "breakdowns": breakdowns}


def _fulfillment(order: Order, status: Status) -> Json:
    body: Json = {
        "fulfillmentStatus": V2026_STATUS[status],
        "fulfilledBy": "AMAZON" if order.is_afn else "MERCHANT",
        "fulfillmentServiceLevel": _SERVICE_LEVELS.get(order.service_category, "STANDARD"),
    }
    if order.ship_window is not None:
        body["shipByWindow"] = _window(order.ship_window)
    if order.delivery_window is not None and status not in PRE_PAYMENT:
        if status is not Status.CANCELED:
            body["deliverByWindow"] = _window(order.delivery_window)
    return body


def _window(window: tuple[int, int]) -> Json:
    return {"earliestDateTime": iso(window[0]), "latestDateTime": iso(window[1])}


def _item(order: Order, item: Item, status: Status, view: View) -> Json:
    market = order.marketplace
    product: Json = {
        "asin": item.product.asin,
        "title": item.product.title,
        "sellerSku": item.product.sku,
        "condition": {"conditionType": "NEW", "conditionSubtype": "NEW"},
    }
    priced = is_priced(status)
    if priced:
        product["price"] = {"unitPrice": money_v2026(item.unit_price, market)}
    body: Json = {
        "orderItemId": item.order_item_id,
        "quantityOrdered": item.quantity,
        "product": product,
    }
    included = view.included
    if "PROCEEDS" in included and priced:
        body["proceeds"] = _item_proceeds(item, order)
    if "PROMOTION" in included and item.promotion_id is not None:
        body["promotion"] = {"breakdowns": [{"promotionId": item.promotion_id}]}
    if "CANCELLATION" in included and order.cancel_reason is not None:
        body["cancellation"] = {
            "cancellationRequest": {"requester": "BUYER", "cancelReason": order.cancel_reason}
        }
    if "FULFILLMENT" in included:
        body["fulfillment"] = _item_fulfillment(order, item, status, view.roles)
    return body


def _item_proceeds(item: Item, order: Order) -> Json:
    market = order.marketplace
    breakdowns = [{"type": "ITEM", "subtotal": money_v2026(item.line_total, market)}]
    if item.shipping_price:
        breakdowns.append(
            {"type": "SHIPPING", "subtotal": money_v2026(item.shipping_price, market)}
        )
    discount = item.promotion_discount + item.shipping_discount
    if discount:
        breakdowns.append({"type": "DISCOUNT", "subtotal": money_v2026(-discount, market)})
    return {"proceedsTotal": money_v2026(item.proceeds(), market), "breakdowns": breakdowns}


def _item_fulfillment(order: Order, item: Item, status: Status, roles: frozenset[str]) -> Json:
    fulfilled = order.quantity_shipped(item, status)
    body: Json = {
        "quantityFulfilled": fulfilled,
        "quantityUnfulfilled": 0 if status is Status.CANCELED else item.quantity - fulfilled,
    }
    if item.gift_message is not None and not order.is_afn and D2C in roles:
        body["packing"] = {"giftOption": {"giftMessage": item.gift_message}}
    return body


def _package(order: Order, status: Status, shipped_at: int, now: int) -> Json:
    digest = hashlib.sha256(order.order_id.encode()).hexdigest()
    promised_by = order.delivery_window[1] if order.delivery_window else shipped_at
    delivered = status in SHIPPED_STATUSES and now > promised_by
    package_status = "DELIVERED" if delivered else "IN_TRANSIT"
    shipped_items = [
        {"orderItemId": item.order_item_id, "quantity": order.quantity_shipped(item, status)}
        for item in order.items
        if order.quantity_shipped(item, status)
    ]
    return {
        "packageReferenceId": "1",
        "createdTime": iso(shipped_at),
        "packageStatus": {"status": package_status},
        "carrier": "Colissimo" if order.marketplace.code == "FR" else "DHL",
        "shipTime": iso(shipped_at),
        "trackingNumber": str(int(digest[:12], 16)).zfill(15),
        "packageItems": shipped_items,
    }
