"""Everything the simulated Amazon holds: sellers and their orders, credentials, reports,
rate-limit buckets, faults, counters, and the clock.

The server thread and the test thread both use one ``Simulator``; a lock keeps them apart.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from keybuzz.simulator.clock import SimClock, iso
from keybuzz.simulator.credentials import CredentialStore, RefreshToken
from keybuzz.simulator.faults import FaultInjector, ScriptedFault
from keybuzz.simulator.generator import DAY, HOUR, OrderGenerator, catalog_size_for
from keybuzz.simulator.orderbook import OrderBook
from keybuzz.simulator.paging import TokenCodec
from keybuzz.simulator.ratelimit import RateLimiter
from keybuzz.simulator.records import AddressFields, Order, Status
from keybuzz.simulator.render_v2026 import EVERYTHING, order_v2026
from keybuzz.simulator.reports import ReportStore
from keybuzz.simulator.settings import FaultSettings, SimulatorSettings

MAX_CATCH_UP_HOURS = 24 * 366


class UnknownSeller(LookupError):
    pass


class UnknownOrder(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class SellerSpec:
    seller_id: str
    orders: int
    days: int
    seed: int
    marketplaces: tuple[str, ...]
    store_name: str = "KeyBuzz Demo Store"
    live_orders_per_hour: float = 0.0
    anchor: int | None = None


@dataclass(slots=True)
class Seller:
    spec: SellerSpec
    anchor: int
    book: OrderBook
    generator: OrderGenerator
    live_until: int

    @property
    def seller_id(self) -> str:
        return self.spec.seller_id

    @property
    def marketplaces(self) -> tuple[str, ...]:
        return self.spec.marketplaces

    def catch_up(self, now: int) -> None:
        """Orders arriving live, one hour slot at a time; those created after now stay hidden."""
        rate = self.spec.live_orders_per_hour
        if rate <= 0:
            return
        slots = 0
        while self.live_until <= now and slots < MAX_CATCH_UP_HOURS:
            start, end = self.live_until, self.live_until + HOUR
            count = self.generator.draw_count(rate)
            self.book.add(self.generator.generate(count, start, end))
            self.live_until = end
            slots += 1


@dataclass(slots=True)
class OperationCount:
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)

    def as_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "throttled": self.statuses.get(429, 0),
            "statuses": {str(code): n for code, n in sorted(self.statuses.items())},
            "faults": dict(sorted(self.faults.items())),
        }


class Simulator:
    def __init__(self, settings: SimulatorSettings, clock: SimClock | None = None) -> None:
        self.settings = settings
        self.clock = clock or SimClock()
        self.lock = threading.RLock()
        self.credentials = CredentialStore()
        self.limiter = RateLimiter(self.clock.time, settings.rate_scale)
        self.faults = FaultInjector(settings.faults)
        self.reports = ReportStore()
        self.page_tokens = TokenCodec()
        self.redirect_uris = list(settings.redirect_uris)
        self.consenting_seller = settings.seller_id
        self.consent_refuses = settings.consent_refuses
        self.sellers: dict[str, Seller] = {}
        self._counts: dict[str, OperationCount] = {}
        self.create_seller(
            SellerSpec(
                seller_id=settings.seller_id,
                orders=settings.orders,
                days=settings.days,
                seed=settings.seed,
                marketplaces=tuple(settings.marketplaces),
                store_name=settings.store_name,
                live_orders_per_hour=settings.live_orders_per_hour,
            )
        )

    def now(self) -> int:
        return self.clock.now()

    def create_seller(self, spec: SellerSpec) -> Seller:
        anchor = spec.anchor if spec.anchor is not None else self.now()
        generator = OrderGenerator(
            seed=spec.seed,
            marketplace_ids=list(spec.marketplaces),
            catalog_size=catalog_size_for(spec.orders),
        )
        book = OrderBook()
        book.add(generator.generate(spec.orders, anchor - spec.days * DAY, anchor))
        seller = Seller(spec, anchor, book, generator, live_until=anchor)
        with self.lock:
            self.sellers[spec.seller_id] = seller
        return seller

    def seller(self, seller_id: str) -> Seller:
        """The seller, with any live orders due by now generated."""
        with self.lock:
            seller = self.sellers.get(seller_id)
            if seller is None:
                raise UnknownSeller(seller_id)
            seller.catch_up(self.now())
            return seller

    def add_orders(self, seller_id: str, count: int) -> list[Order]:
        """New orders created at random moments of the last ten minutes."""
        with self.lock:
            seller = self.seller(seller_id)
            now = self.now()
            orders = seller.generator.generate(count, now - 600, now + 1)
            seller.book.add(orders)
            return orders

    def change_order(
        self,
        seller_id: str,
        order_id: str,
        status: Status | None = None,
        buyer_name: str | None = None,
        address: AddressFields | None = None,
    ) -> Order:
        """A change by the seller or Amazon, made now: its last-update time becomes now.

        ``address`` replaces fields of the shipping address (``name``, ``line1``, ``line2``,
        ``city``, ``region``, ``postal_code``, ``phone``); without a status the status stays.
        """
        with self.lock:
            seller = self.seller(seller_id)
            now = self.now()
            order = seller.book.get(order_id, now)
            if order is None:
                raise UnknownOrder(order_id)
            if buyer_name is not None:
                order.buyer_name = buyer_name
            if address:
                order.address = replace(order.address, **address)
            seller.book.record_change(order, now, status or order.status_at(now))
            return order

    def authorize(self, seller_id: str) -> RefreshToken:
        """Self-authorization (as in Seller Central for private apps): a refresh token."""
        with self.lock:
            self.seller(seller_id)
            return self.credentials.authorize(seller_id)

    def restore_authorization(self, seller_id: str, refresh_token: str) -> None:
        """Honour a refresh token this seller granted to an earlier run (Amazon outlives a
        restart of KeyBuzz; the demo's simulator does not, unless told)."""
        with self.lock:
            self.seller(seller_id)
            self.credentials.restore(refresh_token, seller_id)

    def revoke(self, seller_id: str, refresh_token: str | None = None) -> int:
        with self.lock:
            if refresh_token is not None:
                return int(self.credentials.revoke_refresh_token(refresh_token))
            return self.credentials.revoke_seller(seller_id)

    def expire_access_tokens(self, seller_id: str) -> int:
        with self.lock:
            return self.credentials.expire_access_tokens(seller_id, self.clock.time())

    def set_faults(self, faults: FaultSettings) -> None:
        with self.lock:
            self.faults.configure(faults)

    def script_faults(self, faults: list[ScriptedFault]) -> None:
        with self.lock:
            self.faults.script(faults)

    def set_rate_scale(self, rate_scale: float) -> None:
        with self.lock:
            self.limiter.rate_scale = rate_scale
            self.limiter.reset()

    def advance_clock(self, seconds: float) -> None:
        with self.lock:
            self.clock.advance(seconds)

    def set_clock_offset(self, seconds: float) -> None:
        with self.lock:
            self.clock.offset = seconds

    def count(self, operation: str, status: int, fault: str | None = None) -> None:
        with self.lock:
            entry = self._counts.setdefault(operation, OperationCount())
            entry.requests += 1
            entry.statuses[status] += 1
            if fault is not None:
                entry.faults[fault] += 1

    def counters(self) -> dict[str, dict[str, Any]]:
        with self.lock:
            return {name: entry.as_json() for name, entry in sorted(self._counts.items())}

    def reset_counters(self) -> None:
        with self.lock:
            self._counts.clear()

    def ground_truth(self, seller_id: str) -> dict[str, Any]:
        """Every visible order as a fully privileged v2026 ``getOrder`` sees it, plus v0 status."""
        with self.lock:
            seller = self.seller(seller_id)
            now = self.now()
            orders = []
            for order in seller.book.visible(now):
                view = order_v2026(order, now, EVERYTHING)
                view["orderStatus"] = order.status_at(now).value
                view["fulfillmentChannel"] = order.channel
                orders.append(view)
            return {"sellerId": seller_id, "asOf": iso(now), "orders": orders}
