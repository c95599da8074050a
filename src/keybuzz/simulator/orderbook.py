"""One seller's orders, indexed for the two searches Amazon offers: by creation and by update.

Orders are appended (their list index is their ``position``) and indexed twice, both sorted:
``_created`` holds ``(created, position)`` and ``_events`` holds ``(time, position)`` for every
status change. Orders thus come out by last update without sorting: an event yields its order
only if it is that order's latest event right now. Pages resume from a cursor
``(time, position)`` of the last order returned.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

from keybuzz.simulator.memory import gc_paused
from keybuzz.simulator.records import Order, Status

Cursor = tuple[int, int]


class DateFamily(StrEnum):
    CREATED = "created"
    UPDATED = "updated"


@dataclass(frozen=True, slots=True)
class DeliveryBounds:
    """v0's Earliest/LatestDeliveryDate{After,Before}; only MFN orders have delivery dates."""

    earliest_after: float | None = None
    earliest_before: float | None = None
    latest_after: float | None = None
    latest_before: float | None = None

    def accepts(self, order: Order) -> bool:
        if order.delivery_window is None:
            return False
        earliest, latest = order.delivery_window
        return (
            (self.earliest_after is None or earliest >= self.earliest_after)
            and (self.earliest_before is None or earliest <= self.earliest_before)
            and (self.latest_after is None or latest >= self.latest_after)
            and (self.latest_before is None or latest <= self.latest_before)
        )


@dataclass(frozen=True, slots=True)
class OrderFilter:
    marketplaces: frozenset[str] | None = None
    statuses: frozenset[Status] | None = None
    channels: frozenset[str] | None = None
    order_ids: frozenset[str] | None = None
    seller_order_id: str | None = None
    buyer_email: str | None = None
    delivery: DeliveryBounds | None = None

    def accepts(self, order: Order, now: int) -> bool:
        if self.marketplaces is not None and order.marketplace.id not in self.marketplaces:
            return False
        if self.channels is not None and order.channel not in self.channels:
            return False
        if self.order_ids is not None and order.order_id not in self.order_ids:
            return False
        if self.seller_order_id is not None and order.seller_order_id != self.seller_order_id:
            return False
        if self.buyer_email is not None and order.buyer_email != self.buyer_email:
            return False
        if self.delivery is not None and not self.delivery.accepts(order):
            return False
        return self.statuses is None or order.status_at(now) in self.statuses


@dataclass(frozen=True, slots=True)
class Page:
    orders: list[Order]
    next_cursor: Cursor | None


class OrderBook:
    def __init__(self) -> None:
        self._orders: list[Order] = []
        self._created: list[Cursor] = []
        self._events: list[Cursor] = []
        self._by_id: dict[str, Order] = {}

    def __len__(self) -> int:
        return len(self._orders)

    def add(self, orders: list[Order]) -> None:
        with gc_paused():
            self._append(orders)

    def _append(self, orders: list[Order]) -> None:
        for order in orders:
            order.position = len(self._orders)
            self._orders.append(order)
            self._created.append((order.created, order.position))
            self._by_id[order.order_id] = order
            self._events.extend((time, order.position) for time, _ in order.events)
        self._created.sort()
        self._events.sort()

    def get(self, order_id: str, now: int) -> Order | None:
        order = self._by_id.get(order_id)
        if order is None or order.created > now:
            return None
        return order

    def visible(self, now: int) -> list[Order]:
        """Orders created by now, in creation order."""
        end = bisect_right(self._created, (now, len(self._orders)))
        return [self._orders[position] for _, position in self._created[:end]]

    def record_change(self, order: Order, now: int, status: Status) -> None:
        order.change(now, status)
        insort(self._events, (now, order.position))

    def page(
        self,
        family: DateFamily,
        after: int,
        before: int,
        where: OrderFilter,
        now: int,
        limit: int,
        cursor: Cursor | None = None,
    ) -> Page:
        found: list[Order] = []
        keys: list[Cursor] = []
        scan = self._by_creation if family is DateFamily.CREATED else self._by_update
        for key, order in scan(after, before, now, cursor):
            if not where.accepts(order, now):
                continue
            if len(found) == limit:
                return Page(found, keys[-1])
            found.append(order)
            keys.append(key)
        return Page(found, None)

    def _by_creation(
        self, after: int, before: int, now: int, cursor: Cursor | None
    ) -> Iterator[tuple[Cursor, Order]]:
        created = self._created
        start = bisect_right(created, cursor) if cursor else bisect_left(created, (after, -1))
        for index in range(start, len(created)):
            key = created[index]
            if key[0] > before or key[0] > now:
                return
            yield key, self._orders[key[1]]

    def _by_update(
        self, after: int, before: int, now: int, cursor: Cursor | None
    ) -> Iterator[tuple[Cursor, Order]]:
        events = self._events
        index = bisect_right(events, cursor) if cursor else bisect_left(events, (after, -1))
        previous: Cursor | None = cursor
        while index < len(events):
            key = events[index]
            index += 1
            if key[0] > before:
                return
            if key == previous:
                continue
            previous = key
            order = self._orders[key[1]]
            if order.created <= now and order.last_update_at(now) == key[0]:
                yield key, order
