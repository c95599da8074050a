"""Plain async factories with keyword arguments."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from keybuzz.orders.records import DeliveryStatus, Detail, ItemRecord, OrderRecord, OrderStatus
from keybuzz.tenants import service as tenants
from keybuzz.tenants.models import TenantId

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
_numbers = itertools.count(1)


@dataclass(frozen=True)
class TenantCredentials:
    id: TenantId
    api_key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}", "X-Tenant-Id": self.id}


async def make_tenant(session: AsyncSession, tenant_id: str) -> TenantCredentials:
    created = await tenants.create_tenant(session, tenant_id, None)
    return TenantCredentials(TenantId(created.tenant.id), created.api_key)


def amazon_order_id(number: int) -> str:
    return f"402-{number:07d}-{(number * 7919) % 10_000_000:07d}"


def order_record(**overrides: Any) -> OrderRecord:
    """A complete Amazon order; any field can be overridden."""
    number = overrides.pop("number", None) or next(_numbers)
    order_date = overrides.pop("order_date", NOW - dt.timedelta(days=1))
    values: dict[str, Any] = {
        "marketplace": "amazon",
        "marketplace_id": "A13V1IB3VIYZZH",
        "external_order_id": amazon_order_id(number),
        "order_date": order_date,
        "order_status": OrderStatus.CONFIRMED,
        "external_updated_at": order_date + dt.timedelta(hours=1),
        "customer_name": f"Client {number}",
        "customer_email": f"client{number}@marketplace.amazon.fr",
        "currency": "EUR",
        "total_amount": Decimal("42.50"),
        "delivery_status": DeliveryStatus.PREPARING,
        "fulfillment_channel": "MFN",
        "shipping_address": {"city": "Lyon", "postalCode": "69001", "countryCode": "FR"},
        "latest_ship_date": order_date + dt.timedelta(days=3),
        "items": (
            ItemRecord(
                external_item_id=f"{number}01",
                sku=f"SKU-{number}-A",
                asin="B0TEST0001",
                title="Tasse à café",
                quantity=1,
                unit_price=Decimal("12.50"),
            ),
            ItemRecord(
                external_item_id=f"{number}02",
                sku=f"SKU-{number}-B",
                asin="B0TEST0002",
                title="Théière",
                quantity=2,
                unit_price=Decimal("15.00"),
            ),
        ),
    }
    values.update(overrides)
    return OrderRecord(**values)


def report_record(**overrides: Any) -> OrderRecord:
    """The same order as ``order_record`` gives, as the order report brings it
    (``normalize.from_report_rows``): no buyer, total or deadline, and lines known by SKU
    (``#2`` for a second line of one SKU), never by Amazon's order-item id."""
    record = order_record(**overrides)
    seen: dict[str, int] = {}
    items = []
    for item in record.items or ():
        base = item.sku or item.asin or f"line-{len(items) + 1}"
        seen[base] = seen.get(base, 0) + 1
        name = base if seen[base] == 1 else f"{base}#{seen[base]}"
        items.append(dataclasses.replace(item, external_item_id=name))
    defaults: dict[str, Any] = {
        "customer_name": None,
        "customer_email": None,
        "total_amount": None,
        "latest_ship_date": None,
        "shipping_address": {"city": "Lyon", "postalCode": "69001", "countryCode": "FR"},
        "detail": Detail.REPORT,
    }
    defaults = {name: value for name, value in defaults.items() if name not in overrides}
    return dataclasses.replace(record, items=tuple(items), **defaults)


def api_record(report: OrderRecord, **overrides: Any) -> OrderRecord:
    """``report``'s order as Amazon's API gives it later: with the buyer, total, deadline, full
    address and every line under its order-item id (the same lines, unless ``items`` says)."""
    number = overrides.pop("number", None) or next(_numbers)
    items = tuple(
        dataclasses.replace(item, external_item_id=f"{number:05d}{line:09d}")
        for line, item in enumerate(report.items or (), start=1)
    )
    values: dict[str, Any] = {
        "customer_name": f"Client {number}",
        "customer_email": f"client{number}@marketplace.amazon.fr",
        "total_amount": Decimal("42.50"),
        "latest_ship_date": report.order_date + dt.timedelta(days=3),
        "shipping_address": {
            "name": f"Client {number}",
            "addressLine1": "12 rue de la République",
            "city": "Lyon",
            "postalCode": "69001",
            "countryCode": "FR",
        },
        "items": items,
        "detail": Detail.FULL,
    }
    values.update(overrides)
    return dataclasses.replace(report, **values)
