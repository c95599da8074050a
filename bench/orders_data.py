"""Deterministic synthetic orders for the benchmarks (not used by the application)."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from decimal import Decimal

from keybuzz.orders.records import DeliveryStatus, ItemRecord, OrderRecord, OrderStatus

FIRST_NAMES = (
    "Léa Chloé Manon Emma Camille Inès Jade Louise Zoé Sarah Hugo Lucas Louis Gabriel Arthur "
    "Jules Nathan Raphaël Adam Paul Élodie Amélie Noé Mathéo Maël Théo Clément Anaïs Célia Océane"
).split()
LAST_NAMES = (
    "Martin Bernard Dubois Thomas Robert Richard Petit Durand Leroy Moreau Simon Laurent Lefèvre "
    "Michel Garcia David Bertrand Roux Vincent Fournier Morel Girard André Lefebvre Mercier Dupont "
    "Lambert Bonnet François Martinez Legrand Garnier Faure Rousseau Blanc Guérin Müller Henry"
).split()
STATUSES = (
    (OrderStatus.DELIVERED, DeliveryStatus.DELIVERED, 0.55),
    (OrderStatus.SHIPPED, DeliveryStatus.IN_TRANSIT, 0.2),
    (OrderStatus.CONFIRMED, DeliveryStatus.PREPARING, 0.12),
    (OrderStatus.PENDING, None, 0.05),
    (OrderStatus.CANCELLED, None, 0.05),
    (OrderStatus.RETURNED, DeliveryStatus.DELIVERED, 0.03),
)


def order_id(rng: random.Random) -> str:
    return (
        f"{rng.randint(100, 999)}-{rng.randint(0, 9_999_999):07d}-{rng.randint(0, 9_999_999):07d}"
    )


def generate(count: int, *, seed: int = 7, days: int = 90) -> Iterator[OrderRecord]:
    """``count`` orders over ``days`` days, 1-4 items each (2.5 on average)."""
    rng = random.Random(seed)
    end = dt.datetime(2026, 11, 27, tzinfo=dt.UTC)
    weights = [w for _, _, w in STATUSES]
    for number in range(count):
        order_date = end - dt.timedelta(seconds=rng.randint(0, days * 86400))
        status, delivery, _ = rng.choices(STATUSES, weights)[0]
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        items = tuple(
            ItemRecord(
                external_item_id=f"{number:08d}{line:02d}",
                sku=f"SKU-{rng.randint(1, 5000):05d}",
                asin=f"B0{rng.randint(0, 99_999_999):08d}",
                title=f"Article {rng.randint(1, 5000)} — édition spéciale",
                quantity=rng.randint(1, 3),
                unit_price=Decimal(rng.randint(199, 19999)) / 100,
            )
            for line in range(rng.randint(1, 4))
        )
        total = sum((i.unit_price or Decimal(0)) * i.quantity for i in items)
        mfn = rng.random() < 0.4
        yield OrderRecord(
            marketplace="amazon",
            marketplace_id="A13V1IB3VIYZZH",
            external_order_id=order_id(rng),
            order_date=order_date,
            order_status=status,
            external_updated_at=order_date + dt.timedelta(hours=rng.randint(1, 72)),
            customer_name=f"{first} {last}",
            customer_email=f"{first.lower()}.{last.lower()}{number}@marketplace.amazon.fr",
            currency="EUR",
            total_amount=total if status is not OrderStatus.PENDING else None,
            delivery_status=delivery,
            fulfillment_channel="MFN" if mfn else "AFN",
            shipping_address={"city": "Lyon", "postalCode": "69001", "countryCode": "FR"},
            latest_ship_date=order_date + dt.timedelta(days=2) if mfn else None,
            items=items,
        )
