"""Resumable order searches, paged the same way by getOrders (v0) and searchOrders (v2026).

Every page resends the first page's query unchanged, with Amazon's token for the next page, as
the pagination contract requires. Each page carries a ``Position`` (that query and that token):
saved as JSON, it lets a later run, in any process, resume after the page while the token lives.

A page's envelope is validated as a whole (a body that does not fit is
``AmazonMalformedResponse``), its orders one by one: an order that does not fit is set aside as
a ``RejectedOrder`` with the JSON Amazon sent, and the rest of the page is kept.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from keybuzz.amazon.models_common import describe_validation_error
from keybuzz.amazon.normalize import MARKETPLACE
from keybuzz.amazon.windows import WallClock, Window
from keybuzz.orders.records import RejectedOrder

Q = TypeVar("Q", bound="OrdersQuery")
OrderT = TypeVar("OrderT")
OrderM = TypeVar("OrderM", bound=BaseModel)
Params = list[tuple[str, str]]


class OrdersQuery(BaseModel):
    """Every filter of one search. A subclass adds its API's filters and spells the names."""

    model_config = ConfigDict(frozen=True)

    window: Window = Window()
    max_results_per_page: int = Field(default=100, ge=1, le=100)

    DATE_NAMES: ClassVar[tuple[str, str, str, str]]
    """Created after, created before, updated after, updated before, as the API spells them."""
    LIST_NAMES: ClassVar[tuple[tuple[str, str], ...]]
    """The list filters (fields of ``tuple[str, ...]``, sent comma-separated if not empty), as
    (field, parameter name) in the order they are sent."""
    PAGE_SIZE_NAME: ClassVar[str]
    NEXT_TOKEN_NAME: ClassVar[str]

    def params(self, next_token: str | None = None) -> Params:
        params = self.window.params(self.DATE_NAMES)
        for attribute, name in self.LIST_NAMES:
            values: tuple[str, ...] = getattr(self, attribute)
            if values:
                params.append((name, ",".join(values)))
        params.append((self.PAGE_SIZE_NAME, str(self.max_results_per_page)))
        if next_token is not None:
            params.append((self.NEXT_TOKEN_NAME, next_token))
        return params


class Position(BaseModel, Generic[Q]):
    """Where a search stands; ``model_dump(mode="json")`` to save it, pass it back to resume."""

    model_config = ConfigDict(frozen=True)

    query: Q
    next_token: str


@dataclass(frozen=True, slots=True)
class OrdersPage(Generic[OrderT, Q]):
    orders: list[OrderT]
    position: Position[Q] | None
    """Resume after this page from here; ``None`` on the last page."""
    created_before: datetime | None = None
    last_updated_before: datetime | None = None
    """The upper bound Amazon applied: the next incremental run's ``last_updated_after``."""
    payloads: list[dict[str, Any]] = field(default_factory=list)
    """The JSON each of ``orders`` was read from, in the same order (kept for an order that
    later fails normalisation)."""
    rejected: list[RejectedOrder] = field(default_factory=list)
    """The page's orders that do not fit the model, set aside with what Amazon sent."""


@dataclass(frozen=True, slots=True)
class OrderReader(Generic[OrderM]):
    """Reads the orders of a page one by one: an order that does not fit ``model`` (unknown
    shape, bad date, missing id) becomes a ``RejectedOrder`` and the others are kept."""

    model: type[OrderM]
    source: str
    """The operation, e.g. ``v2026.searchOrders``: where a rejected order came from."""
    id_key: str
    """The field holding the order id in Amazon's JSON (``orderId``, ``AmazonOrderId``)."""

    def read(
        self, raw_orders: Sequence[Any]
    ) -> tuple[list[OrderM], list[dict[str, Any]], list[RejectedOrder]]:
        """The orders that fit, the JSON of each, and the orders set aside."""
        orders: list[OrderM] = []
        payloads: list[dict[str, Any]] = []
        rejected: list[RejectedOrder] = []
        for raw in raw_orders:
            if not isinstance(raw, dict):
                rejected.append(self.reject({"order": raw}, "not a JSON object"))
                continue
            try:
                orders.append(self.model.model_validate(raw))
            except ValidationError as error:
                rejected.append(self.reject(raw, describe_validation_error(error)))
            else:
                payloads.append(raw)
        return orders, payloads, rejected

    def reject(self, payload: dict[str, Any], reason: str) -> RejectedOrder:
        order_id = payload.get(self.id_key)
        return RejectedOrder(
            marketplace=MARKETPLACE,
            source=self.source,
            reason=reason,
            payload=payload,
            external_order_id=order_id if isinstance(order_id, str) and order_id else None,
        )


class PageBody(Protocol):
    """What a page of either API answers, whatever its envelope; orders as Amazon sent them."""

    @property
    def orders(self) -> Sequence[Any]: ...

    @property
    def next_token(self) -> str | None: ...

    @property
    def created_before(self) -> datetime | None: ...

    @property
    def last_updated_before(self) -> datetime | None: ...


@dataclass(frozen=True, slots=True)
class Pager(Generic[OrderM, Q]):
    """How one API pages: its position type, how it reads orders, how it asks for a page."""

    position_type: type[Position[Q]]
    reader: OrderReader[OrderM]
    fetch: Callable[[Params], Awaitable[PageBody]]
    """Asks Amazon for one page with these parameters."""
    wall_clock: WallClock

    def start(self, start: Q | Position[Q]) -> tuple[Q, str | None] | None:
        """The query and page token to ask first; ``None`` when a new search's window is one
        Amazon would refuse as empty (nothing to ask). A new query's upper bound is made legal."""
        if isinstance(start, Position):
            return start.query, start.next_token
        now = self.wall_clock()
        query = start.model_copy(update={"window": start.window.legal(now)})
        if query.window.is_empty(now):
            return None
        return query, None

    async def page(self, query: Q, next_token: str | None) -> OrdersPage[OrderM, Q]:
        """One page: one call to Amazon."""
        body = await self.fetch(query.params(next_token))
        following = body.next_token or None
        orders, payloads, rejected = self.reader.read(body.orders)
        return OrdersPage(
            orders=orders,
            position=self.position_type(query=query, next_token=following) if following else None,
            created_before=body.created_before,
            last_updated_before=body.last_updated_before,
            payloads=payloads,
            rejected=rejected,
        )

    async def first_page(self, start: Q | Position[Q]) -> OrdersPage[OrderM, Q]:
        """The first page of a new search, or the page after a saved position."""
        begun = self.start(start)
        if begun is None:
            return OrdersPage([], None)
        return await self.page(*begun)

    async def pages(self, start: Q | Position[Q]) -> AsyncGenerator[OrdersPage[OrderM, Q], None]:
        """The pages of a new search (``start`` is its query), or of a saved one after
        ``start``'s page."""
        begun = self.start(start)
        if begun is None:
            yield OrdersPage([], None)
            return
        query, next_token = begun
        while True:
            page = await self.page(query, next_token)
            yield page
            if page.position is None:
                return
            next_token = page.position.next_token
