"""Deterministic seller data: the same seed and anchor always give the same orders.

Every draw comes from a ``random.Random`` owned by the generator (no global random state). Times
are offsets from the anchor, so ids, items and prices do not depend on when the data is made.
"""

from __future__ import annotations

import random
import string
from bisect import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Generic, TypeVar

from keybuzz.simulator.locales import LOCALES, Locale
from keybuzz.simulator.marketplaces import MARKETPLACES, Marketplace
from keybuzz.simulator.memory import gc_paused
from keybuzz.simulator.records import AFN, MFN, Address, Item, Order, Product, Status

MINUTE = 60
HOUR = 3600
DAY = 86400
_ASIN_CHARS = string.ascii_uppercase + string.digits
# Relative weight of each hour of the day for new orders: quiet nights, busy evenings.
_HOUR_WEIGHTS = (1, 1, 1, 1, 1, 1, 2, 3, 4, 5, 6, 6, 7, 6, 6, 6, 6, 7, 8, 9, 10, 9, 6, 3)
_ORDER_PREFIX = {"UK": "20", "US": "11", "CA": "70", "JP": "25"}
_CANCEL_REASONS = ("Ordered by mistake", "Found a better price", "Delivery too slow")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Weighted(Generic[T]):
    """A weighted choice whose cumulative weights are computed once, not on every draw."""

    values: tuple[T, ...]
    cumulative: tuple[float, ...]

    @classmethod
    def of(cls, values: Sequence[T], weights: Sequence[float]) -> Weighted[T]:
        return cls(tuple(values), tuple(accumulate(weights)))


_HOURS = Weighted.of(range(24), _HOUR_WEIGHTS)
_CATEGORIES = Weighted.of(("Standard", "Expedited", "NextDay", "SameDay"), (80, 15, 4, 1))
_LINES = Weighted.of((1, 2, 3, 4, 5), (60, 22, 10, 5, 3))
_QUANTITIES = Weighted.of((1, 2, 3, 4, 5), (80, 14, 3, 2, 1))
_PENDING = Weighted.of(
    ((MINUTE, 20 * MINUTE), (20 * MINUTE, 4 * HOUR), (4 * HOUR, 48 * HOUR)), (70, 25, 5)
)


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    asin: str
    sku: str
    title_index: int
    variant_index: int
    price: int


class OrderGenerator:
    """Draws orders for one seller; ``generate`` may be called again for later arrivals."""

    def __init__(self, *, seed: int, marketplace_ids: list[str], catalog_size: int) -> None:
        self._rng = random.Random(seed)
        self._marketplaces = [MARKETPLACES[m] for m in marketplace_ids]
        self._catalog = self._make_catalog(catalog_size)
        self._titles: dict[tuple[int, str], Product] = {}
        self._used_ids: set[str] = set()

    def generate(self, count: int, start: int, end: int) -> list[Order]:
        """``count`` orders created in ``[start, end)``, sorted by creation time."""
        with gc_paused():
            created = sorted(self._creation_time(start, end) for _ in range(count))
            return [self._order(when) for when in created]

    def _pick(self, weighted: Weighted[T]) -> T:
        index = bisect(weighted.cumulative, self._rng.random() * weighted.cumulative[-1])
        return weighted.values[index]

    def draw_count(self, rate: float) -> int:
        """How many orders arrive in one hour at ``rate`` an hour on average."""
        whole = int(rate)
        return whole + (1 if self._rng.random() < rate - whole else 0)

    def _creation_time(self, start: int, end: int) -> int:
        """A busy-hours-weighted moment of ``[start, end)``, from exactly three draws.

        A fixed number of draws keeps every later draw (ids, items, prices) independent of
        where the window falls in the day; moments outside the window wrap into it.
        """
        last_day = (end - 1) - (end - 1) % DAY
        days = (last_day - (start - start % DAY)) // DAY + 1
        day = last_day - int(self._rng.random() * days) * DAY
        when = day + self._pick(_HOURS) * HOUR + self._rng.randrange(HOUR)
        return start + (when - start) % max(end - start, 1)

    def _make_catalog(self, size: int) -> list[CatalogEntry]:
        rng = self._rng
        entries: list[CatalogEntry] = []
        skus: set[str] = set()
        while len(entries) < size:
            sku = f"KBZ-{rng.randrange(10000, 100000)}-{rng.choice(string.ascii_uppercase)}"
            if sku in skus:
                continue
            skus.add(sku)
            asin = "B0" + "".join(rng.choices(_ASIN_CHARS, k=8))
            cents = rng.choice((99, 49, 0, 90, 95))
            price = rng.randrange(4, 150) * 100 + cents
            entries.append(CatalogEntry(asin, sku, rng.randrange(50), rng.randrange(50), price))
        return entries

    def _product(self, entry: CatalogEntry, marketplace: Marketplace) -> tuple[Product, int]:
        key = (id(entry), marketplace.locale)
        product = self._titles.get(key)
        if product is None:
            locale = LOCALES[marketplace.locale]
            name = locale.products[entry.title_index % len(locale.products)]
            variant = locale.variants[entry.variant_index % len(locale.variants)]
            product = Product(entry.asin, entry.sku, f"{name} - {variant}")
            self._titles[key] = product
        price = entry.price if marketplace.decimals else entry.price // 100 * 15
        return product, price

    def _order_id(self, marketplace: Marketplace) -> str:
        prefix = _ORDER_PREFIX.get(marketplace.code, "40")
        while True:
            order_id = (
                f"{prefix}{self._rng.randrange(10)}-{self._rng.randrange(10**7):07d}"
                f"-{self._rng.randrange(10**7):07d}"
            )
            if order_id not in self._used_ids:
                self._used_ids.add(order_id)
                return order_id

    def _order(self, created: int) -> Order:
        rng = self._rng
        marketplace = rng.choice(self._marketplaces)
        locale = LOCALES[marketplace.locale]
        channel = AFN if rng.random() < 0.45 else MFN
        is_business = rng.random() < 0.08
        buyer_name = self._person(locale)
        order_id = self._order_id(marketplace)
        category = self._pick(_CATEGORIES)
        order = Order(
            order_id=order_id,
            seller_order_id=order_id if rng.random() < 0.9 else f"KB-{rng.randrange(10**8):08d}",
            marketplace=marketplace,
            channel=channel,
            created=created,
            events=[],
            items=self._items(marketplace, channel),
            buyer_name=buyer_name,
            buyer_email=self._relay_email(marketplace),
            address=self._address(marketplace, locale, buyer_name, is_business),
            ship_service_level=self._ship_service_level(marketplace, category),
            service_category=category,
            is_prime=channel == MFN and rng.random() < 0.1,
            is_business=is_business,
            is_preorder=rng.random() < 0.005,
            purchase_order_number=(
                f"PO-{rng.randrange(10**6):06d}" if is_business and rng.random() < 0.5 else None
            ),
        )
        order.events = self._timeline(order)
        if channel == MFN:
            self._promise_windows(order)
        return order

    def _items(self, marketplace: Marketplace, channel: str) -> list[Item]:
        rng = self._rng
        lines = self._pick(_LINES)
        entries = rng.sample(self._catalog, min(lines, len(self._catalog)))
        items = []
        for index, entry in enumerate(entries):
            product, unit_price = self._product(entry, marketplace)
            quantity = self._pick(_QUANTITIES)
            promoted = rng.random() < 0.1
            discount = unit_price * quantity * rng.choice((5, 10, 15, 20)) // 100 if promoted else 0
            shipping = 0
            if channel == MFN and index == 0 and rng.random() < 0.5:
                shipping = rng.choice((299, 349, 499, 699)) * (1 if marketplace.decimals else 2)
            gift = rng.random() < 0.03
            items.append(
                Item(
                    order_item_id=f"{rng.randrange(10**13, 10**14)}",
                    product=product,
                    quantity=quantity,
                    unit_price=unit_price,
                    shipping_price=shipping,
                    promotion_discount=discount,
                    shipping_discount=0,
                    promotion_id=f"{marketplace.code}-PROMO-{rng.randrange(1, 40):02d}"
                    if promoted
                    else None,
                    gift_message=rng.choice(LOCALES[marketplace.locale].gift_messages)
                    if gift
                    else None,
                    ships_first=index < (lines + 1) // 2,
                )
            )
        return items

    def _person(self, locale: Locale) -> str:
        return f"{self._rng.choice(locale.first_names)} {self._rng.choice(locale.last_names)}"

    def _relay_email(self, marketplace: Marketplace) -> str:
        local = "".join(self._rng.choices(string.ascii_lowercase + string.digits, k=15))
        return f"{local}@marketplace.{marketplace.name.lower()}"

    def _address(
        self, marketplace: Marketplace, locale: Locale, buyer: str, business: bool
    ) -> Address:
        rng = self._rng
        city = rng.choice(locale.cities)
        number = rng.randrange(1, 200)
        street = rng.choice(locale.streets)
        line1 = f"{number} {street}" if locale.number_before_street else f"{street} {number}"
        digits = "".join(rng.choices(string.digits, k=7))
        return Address(
            name=buyer if rng.random() < 0.85 else self._person(locale),
            line1=line1,
            line2=rng.choice(("Bâtiment B", "Apt 3", "2e étage", "c/o Rezeption"))
            if rng.random() < 0.15
            else None,
            city=city.name,
            region=city.region,
            postal_code=city.postal_code,
            country=marketplace.country,
            phone=f"{locale.phone_prefix} {digits}",
            commercial=business,
            company=f"{rng.choice(locale.last_names)} SARL" if business else None,
        )

    def _ship_service_level(self, marketplace: Marketplace, category: str) -> str:
        if category == "Standard":
            return f"Std {marketplace.code} Dom_{self._rng.randrange(1, 4)}"
        if category == "Expedited":
            return f"Exp {marketplace.code} Dom_{self._rng.randrange(1, 3)}"
        return category

    def _timeline(self, order: Order) -> list[tuple[int, Status]]:
        rng = self._rng
        now = order.created
        events: list[tuple[int, Status]] = []
        if order.is_preorder:
            events.append((now, Status.PENDING_AVAILABILITY))
            now += rng.randrange(3, 20) * DAY
        events.append((now, Status.PENDING))
        low, high = self._pick(_PENDING)
        now += rng.randrange(low, high)
        if rng.random() < 0.025:
            return [*events, (now, Status.CANCELED)]
        events.append((now, Status.UNSHIPPED))
        handling = (2 * HOUR, 30 * HOUR) if order.is_afn else (3 * HOUR, 72 * HOUR)
        now += rng.randrange(*handling)
        if rng.random() < 0.015:
            order.cancel_reason = rng.choice(_CANCEL_REASONS)
            return [*events, (now, Status.CANCELED)]
        if len(order.items) > 1 and rng.random() < 0.12:
            events.append((now, Status.PARTIALLY_SHIPPED))
            now += rng.randrange(4 * HOUR, 48 * HOUR)
        if order.is_business and not order.is_afn and rng.random() < 0.15:
            events.append((now, Status.INVOICE_UNCONFIRMED))
            now += rng.randrange(1, 6) * DAY
        events.append((now, Status.SHIPPED))
        return events

    def _promise_windows(self, order: Order) -> None:
        handling_days = self._rng.randrange(1, 3)
        day_start = order.created - order.created % DAY
        latest_ship = day_start + handling_days * DAY + DAY - 1
        transit = self._rng.randrange(1, 5) * DAY
        order.ship_window = (order.created, latest_ship)
        order.delivery_window = (latest_ship + 1, latest_ship + transit)


def catalog_size_for(order_count: int) -> int:
    return max(20, min(400, order_count // 20))
