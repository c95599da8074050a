"""Orders API v0 views (``ordersV0.json#/definitions/Order``, ``OrderItem``) of the records.

Restricted fields (model notes on ``ShippingAddress`` and ``BuyerInfo``) appear only when the
call carries a restricted data token granting ``shippingAddress`` / ``buyerInfo``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from keybuzz.simulator.clock import iso
from keybuzz.simulator.money import money_v0
from keybuzz.simulator.records import (
    PRE_PAYMENT,
    SHIPPING_ADDRESS_STATUSES,
    Item,
    Order,
    Status,
    is_priced,
)

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class PiiAccess:
    buyer_info: bool = False
    shipping_address: bool = False


NO_PII = PiiAccess()


def order_v0(order: Order, now: int, access: PiiAccess = NO_PII) -> Json:
    status = order.status_at(now)
    shipped = sum(order.quantity_shipped(item, status) for item in order.items)
    ordered = sum(item.quantity for item in order.items)
    body: Json = {
        "AmazonOrderId": order.order_id,
        "SellerOrderId": order.seller_order_id,
        "PurchaseDate": iso(order.created),
        "LastUpdateDate": iso(order.last_update_at(now)),
        "OrderStatus": status.value,
        "FulfillmentChannel": order.channel,
        "SalesChannel": order.marketplace.name,
        "ShipServiceLevel": order.ship_service_level,
        "NumberOfItemsShipped": shipped,
        "NumberOfItemsUnshipped": 0 if status is Status.CANCELED else ordered - shipped,
        "PaymentMethod": "Other",
        "PaymentMethodDetails": ["Standard"],
        "MarketplaceId": order.marketplace.id,
        "ShipmentServiceLevelCategory": order.service_category,
        "OrderType": "Preorder" if order.is_preorder else "StandardOrder",
        "IsBusinessOrder": order.is_business,
        "IsPrime": order.is_prime,
        "IsPremiumOrder": False,
        "IsGlobalExpressEnabled": False,
        "IsReplacementOrder": False,
        "IsSoldByAB": False,
        "IsISPU": False,
        "IsAccessPointOrder": False,
        "HasRegulatedItems": False,
        "AutomatedShippingSettings": {"HasAutomatedShippingSettings": False},
        "BuyerInfo": buyer_info_v0(order, status, access),
    }
    if is_priced(status):
        body["OrderTotal"] = money_v0(order.total(), order.marketplace)
    body.update(_promise_dates(order, status))
    if status in SHIPPING_ADDRESS_STATUSES:
        body["ShippingAddress"] = shipping_address_v0(order, status, now, access)
    return body


def _promise_dates(order: Order, status: Status) -> Json:
    """Ship and delivery promises exist only for seller-fulfilled (MFN) orders."""
    if order.ship_window is None or order.delivery_window is None:
        return {}
    dates = {
        "EarliestShipDate": iso(order.ship_window[0]),
        "LatestShipDate": iso(order.ship_window[1]),
    }
    if status not in PRE_PAYMENT and status is not Status.CANCELED:
        dates["EarliestDeliveryDate"] = iso(order.delivery_window[0])
        dates["LatestDeliveryDate"] = iso(order.delivery_window[1])
    return dates


def buyer_info_v0(order: Order, status: Status, access: PiiAccess) -> Json:
    info: Json = {}
    if status in SHIPPING_ADDRESS_STATUSES:
        info["BuyerEmail"] = order.buyer_email
    if access.buyer_info:
        info["BuyerName"] = order.buyer_name
        if order.purchase_order_number is not None:
            info["PurchaseOrderNumber"] = order.purchase_order_number
    return info


def shipping_address_v0(order: Order, status: Status, now: int, access: PiiAccess) -> Json:
    address = order.address
    body: Json = {
        "City": address.city,
        "StateOrRegion": address.region,
        "PostalCode": address.postal_code,
        "CountryCode": address.country,
    }
    if access.shipping_address:
        body["Name"] = address.name
        if address.company is not None:
            body["CompanyName"] = address.company
        body["AddressLine1"] = address.line1
        if address.line2 is not None:
            body["AddressLine2"] = address.line2
        if order.phone_visible(status, now):
            body["Phone"] = address.phone
        body["AddressType"] = "Commercial" if address.commercial else "Residential"
    return body


def order_item_v0(order: Order, item: Item, now: int, access: PiiAccess = NO_PII) -> Json:
    status = order.status_at(now)
    market = order.marketplace
    body: Json = {
        "ASIN": item.product.asin,
        "SellerSKU": item.product.sku,
        "OrderItemId": item.order_item_id,
        "Title": item.product.title,
        "QuantityOrdered": item.quantity,
        "QuantityShipped": order.quantity_shipped(item, status),
        "ProductInfo": {"NumberOfItems": "1"},
        "ConditionId": "New",
        "ConditionSubtypeId": "New",
        "IsTransparency": False,
    }
    if is_priced(status):
        shipping = item.shipping_price
        body.update(
            {
                "ItemPrice": money_v0(item.line_total, market),
                "ItemTax": money_v0(order.vat_part(item.line_total), market),
                "ShippingPrice": money_v0(shipping, market),
                "ShippingTax": money_v0(order.vat_part(shipping), market),
                "ShippingDiscount": money_v0(item.shipping_discount, market),
                "ShippingDiscountTax": money_v0(0, market),
                "PromotionDiscount": money_v0(item.promotion_discount, market),
                "PromotionDiscountTax": money_v0(order.vat_part(item.promotion_discount), market),
                "PromotionIds": [item.promotion_id] if item.promotion_id else [],
                "IsGift": "true" if item.is_gift else "false",
            }
        )
    if order.cancel_reason is not None:
        body["BuyerRequestedCancel"] = {
            "IsBuyerRequestedCancel": "true",
            "BuyerCancelReason": order.cancel_reason,
        }
    buyer_info = item_buyer_info_v0(order, item, access)
    if buyer_info:
        body["BuyerInfo"] = buyer_info
    return body


def item_buyer_info_v0(order: Order, item: Item, access: PiiAccess) -> Json:
    """Gift messages are restricted and exist only for seller-fulfilled orders."""
    if not (access.buyer_info and item.gift_message is not None and not order.is_afn):
        return {}
    return {"GiftMessageText": item.gift_message, "GiftWrapLevel": "Classic"}
