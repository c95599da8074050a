"""Orders API v0 payloads (``ordersV0.json``): the fields KeyBuzz reads, the rest ignored.

Buyer and address fields are kept out of ``repr`` so that a model printed by accident does not
put personal data in a log.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import ConfigDict, Field
from pydantic.alias_generators import to_pascal

from keybuzz.amazon.models_common import AmazonModel, AmazonTime


class V0Model(AmazonModel):
    model_config = ConfigDict(alias_generator=to_pascal)


class Money(V0Model):
    currency_code: str | None = None
    amount: Decimal | None = None
    """A decimal string in the payload (``"11.01"``)."""


class BuyerInfo(V0Model):
    buyer_email: str | None = Field(default=None, repr=False)
    buyer_name: str | None = Field(default=None, repr=False)
    buyer_county: str | None = Field(default=None, repr=False)
    purchase_order_number: str | None = None


class Address(V0Model):
    name: str | None = Field(default=None, repr=False)
    company_name: str | None = Field(default=None, repr=False)
    address_line1: str | None = Field(default=None, repr=False, alias="AddressLine1")
    address_line2: str | None = Field(default=None, repr=False, alias="AddressLine2")
    address_line3: str | None = Field(default=None, repr=False, alias="AddressLine3")
    city: str | None = Field(default=None, repr=False)
    county: str | None = Field(default=None, repr=False)
    district: str | None = Field(default=None, repr=False)
    state_or_region: str | None = Field(default=None, repr=False)
    municipality: str | None = Field(default=None, repr=False)
    postal_code: str | None = Field(default=None, repr=False)
    country_code: str | None = None
    phone: str | None = Field(default=None, repr=False)
    address_type: str | None = None


class Order(V0Model):
    amazon_order_id: str
    seller_order_id: str | None = None
    purchase_date: AmazonTime
    last_update_date: AmazonTime
    order_status: str
    fulfillment_channel: str | None = None
    sales_channel: str | None = None
    ship_service_level: str | None = None
    order_total: Money | None = None
    number_of_items_shipped: int | None = None
    number_of_items_unshipped: int | None = None
    marketplace_id: str | None = None
    order_type: str | None = None
    is_prime: bool | None = None
    is_business_order: bool | None = None
    is_replacement_order: bool | None = None
    earliest_ship_date: AmazonTime | None = None
    latest_ship_date: AmazonTime | None = None
    earliest_delivery_date: AmazonTime | None = None
    latest_delivery_date: AmazonTime | None = None
    buyer_info: BuyerInfo | None = None
    shipping_address: Address | None = None


class OrdersList(V0Model):
    orders: list[Any] = Field(default_factory=list)
    """Each order as Amazon sent it: read one by one (``paging.OrderReader``)."""
    next_token: str | None = None
    created_before: AmazonTime | None = None
    """The upper bound Amazon applied: the watermark for the next incremental run."""
    last_updated_before: AmazonTime | None = None


class GetOrdersResponse(V0Model):
    payload: OrdersList


class GetOrderResponse(V0Model):
    payload: Order


class BuyerRequestedCancel(V0Model):
    is_buyer_requested_cancel: str | None = None
    buyer_cancel_reason: str | None = None


class OrderItem(V0Model):
    asin: str = Field(alias="ASIN")
    order_item_id: str
    seller_sku: str | None = Field(default=None, alias="SellerSKU")
    title: str | None = None
    quantity_ordered: int
    quantity_shipped: int | None = None
    item_price: Money | None = None
    """The line total (unit price times quantity), without shipping or gift wrap."""
    item_tax: Money | None = None
    shipping_price: Money | None = None
    promotion_discount: Money | None = None
    condition_id: str | None = None
    is_gift: str | None = None
    buyer_requested_cancel: BuyerRequestedCancel | None = None


class OrderItemsList(V0Model):
    amazon_order_id: str
    order_items: list[OrderItem] = Field(default_factory=list)
    next_token: str | None = None


class GetOrderItemsResponse(V0Model):
    payload: OrderItemsList
