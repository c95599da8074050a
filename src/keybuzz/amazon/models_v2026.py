"""Orders API v2026-01-01 payloads (``orders_2026-01-01.json``): no ``payload`` wrapper, items
always inline, the rest of an order only with the matching ``includedData``."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import ConfigDict, Field
from pydantic.alias_generators import to_camel

from keybuzz.amazon.models_common import AmazonModel, AmazonTime


class V2026Model(AmazonModel):
    model_config = ConfigDict(alias_generator=to_camel)


class Money(V2026Model):
    amount: Decimal
    currency_code: str


class Alias(V2026Model):
    alias_id: str
    alias_type: str


class SalesChannel(V2026Model):
    channel_name: str
    marketplace_id: str | None = None
    marketplace_name: str | None = None


class Buyer(V2026Model):
    buyer_name: str | None = Field(default=None, repr=False)
    buyer_email: str | None = Field(default=None, repr=False)
    buyer_company_name: str | None = Field(default=None, repr=False)
    buyer_purchase_order_number: str | None = None


class CustomerAddress(V2026Model):
    name: str | None = Field(default=None, repr=False)
    company_name: str | None = Field(default=None, repr=False)
    address_line1: str | None = Field(default=None, repr=False, alias="addressLine1")
    address_line2: str | None = Field(default=None, repr=False, alias="addressLine2")
    address_line3: str | None = Field(default=None, repr=False, alias="addressLine3")
    city: str | None = Field(default=None, repr=False)
    district_or_county: str | None = Field(default=None, repr=False)
    state_or_region: str | None = Field(default=None, repr=False)
    municipality: str | None = Field(default=None, repr=False)
    postal_code: str | None = Field(default=None, repr=False)
    country_code: str | None = None
    phone: str | None = Field(default=None, repr=False)
    address_type: str | None = None


class Recipient(V2026Model):
    delivery_address: CustomerAddress | None = None


class OrderProceeds(V2026Model):
    grand_total: Money | None = None


class DateTimeRange(V2026Model):
    earliest_date_time: AmazonTime | None = None
    latest_date_time: AmazonTime | None = None


class OrderFulfillment(V2026Model):
    fulfillment_status: str
    fulfilled_by: str | None = None
    fulfillment_service_level: str | None = None
    ship_by_window: DateTimeRange | None = None
    deliver_by_window: DateTimeRange | None = None


class ItemPrice(V2026Model):
    unit_price: Money | None = None
    """Per unit (v0's ``ItemPrice`` was the line total)."""


class ItemProduct(V2026Model):
    asin: str | None = None
    title: str | None = None
    seller_sku: str | None = None
    price: ItemPrice | None = None


class ItemProceeds(V2026Model):
    proceeds_total: Money | None = None


class ItemFulfillment(V2026Model):
    quantity_fulfilled: int | None = None
    quantity_unfulfilled: int | None = None


class OrderItem(V2026Model):
    order_item_id: str
    quantity_ordered: int
    product: ItemProduct
    proceeds: ItemProceeds | None = None
    fulfillment: ItemFulfillment | None = None


class PackageStatus(V2026Model):
    status: str
    detailed_status: str | None = None


class OrderPackage(V2026Model):
    package_reference_id: str
    package_status: PackageStatus | None = None
    carrier: str | None = None
    ship_time: AmazonTime | None = None
    tracking_number: str | None = None


class Order(V2026Model):
    order_id: str
    order_aliases: list[Alias] = Field(default_factory=list)
    created_time: AmazonTime
    last_updated_time: AmazonTime
    programs: list[str] = Field(default_factory=list)
    sales_channel: SalesChannel
    buyer: Buyer | None = None
    recipient: Recipient | None = None
    proceeds: OrderProceeds | None = None
    fulfillment: OrderFulfillment | None = None
    order_items: list[OrderItem]
    packages: list[OrderPackage] = Field(default_factory=list)

    @property
    def seller_order_id(self) -> str | None:
        for alias in self.order_aliases:
            if alias.alias_type == "SELLER_ORDER_ID":
                return alias.alias_id
        return None


class Pagination(V2026Model):
    next_token: str | None = None


class SearchOrdersResponse(V2026Model):
    orders: list[Any]
    """Each order as Amazon sent it: read one by one (``paging.OrderReader``), so that one order
    KeyBuzz cannot read is set aside instead of failing its page."""
    pagination: Pagination | None = None
    created_before: AmazonTime | None = None
    last_updated_before: AmazonTime | None = None

    @property
    def next_token(self) -> str | None:
        return self.pagination.next_token if self.pagination else None


class GetOrderResponse(V2026Model):
    order: Order
