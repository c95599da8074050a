"""Plain async factories with keyword arguments."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from keybuzz.orders.records import DeliveryStatus, ItemRecord, OrderRecord, OrderStatus
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
