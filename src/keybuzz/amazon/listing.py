"""Every order of a window, with its items, as ``OrderRecord`` pages: Orders v2026 first, Orders
v0 for sellers whose searchOrders answers 403.

The operations run as pipelines, each paced by its own bucket: with v2026 the next searchOrders
page is fetched while the caller stores the current one; with v0, getOrders runs ahead while
getOrderItems calls for the pages already listed go out at their own rate. A page is handed
over once all of its items are in, with a position from which a later run resumes after it.

Each order is read and normalised on its own: one Amazon sends that cannot be stored (unknown
status, bad date, missing id) is in the page's ``rejected``, with its JSON, and never fails the
page. ``OrderLister.page`` asks exactly one page of one API (the sync engine's enrichment steps,
which decide themselves which API to ask and when).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict

from keybuzz.amazon import models_v0, models_v2026, normalize
from keybuzz.amazon.concurrency import ahead, gather_or_cancel
from keybuzz.amazon.errors import (
    AmazonAccessDenied,
    AmazonApiUnavailable,
    AmazonMalformedResponse,
    AmazonNotFound,
)
from keybuzz.amazon.lwa import Clock
from keybuzz.amazon.operations import GET_ORDERS, SEARCH_ORDERS
from keybuzz.amazon.orders_v0 import GetOrdersPage, GetOrdersPosition, GetOrdersQuery, OrdersV0Api
from keybuzz.amazon.orders_v2026 import OrdersV2026Api, SearchOrdersQuery, SearchPosition
from keybuzz.amazon.paging import OrdersPage, OrdersQuery
from keybuzz.amazon.registry import ConnectionState
from keybuzz.amazon.windows import Window
from keybuzz.orders.records import OrderRecord, RejectedOrder

logger = logging.getLogger("keybuzz.amazon")

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
Q = TypeVar("Q", bound=OrdersQuery)
Api = Literal["v2026", "v0"]
# After a 403 on searchOrders, the connection uses v0 this long before trying v2026 again.
V2026_RETRY_AFTER = 6 * 3600.0
V0_PAGES_AHEAD = 2


@dataclass(frozen=True, slots=True)
class ListingQuery:
    """The orders a listing wants, whichever API serves them: where, when, how many a page."""

    marketplace_ids: Sequence[str]
    window: Window
    max_results_per_page: int = 100


class ListingPosition(BaseModel):
    """Where a listing stands; ``model_dump(mode="json")`` to save it, pass it back to resume."""

    model_config = ConfigDict(frozen=True)

    api: Api
    v2026: SearchPosition | None = None
    v0: GetOrdersPosition | None = None


@dataclass(frozen=True, slots=True)
class OrderRecordPage:
    records: list[OrderRecord]
    position: ListingPosition | None
    """Resume after this page from here; ``None`` on the last page."""
    api: Api
    created_before: datetime | None = None
    last_updated_before: datetime | None = None
    """The upper bound Amazon applied: where the next incremental run starts."""
    rejected: list[RejectedOrder] = field(default_factory=list)
    """The page's orders that cannot be stored, set aside with what Amazon sent and why."""


def _as(api_query: type[Q], query: ListingQuery) -> Q:
    """The listing's query in the terms of one API (its other filters left at their defaults)."""
    return api_query.model_validate(query, from_attributes=True)


def _normalized(
    page: OrdersPage[M, Any],
    convert: Callable[[M], OrderRecord],
    identify: Callable[[M], str],
    source: str,
) -> tuple[list[OrderRecord], list[RejectedOrder]]:
    """The page's records, and its orders that did not fit the model or cannot be normalised."""
    records: list[OrderRecord] = []
    rejected = list(page.rejected)
    for order, payload in zip(page.orders, page.payloads, strict=True):
        try:
            records.append(convert(order))
        except normalize.NORMALIZE_ERRORS as error:
            rejected.append(
                RejectedOrder(
                    marketplace=normalize.MARKETPLACE,
                    source=source,
                    reason=str(error),
                    payload=payload,
                    external_order_id=identify(order),
                )
            )
    return records, rejected


def _v2026_page(page: OrdersPage[models_v2026.Order, SearchOrdersQuery]) -> OrderRecordPage:
    records, rejected = _normalized(
        page, normalize.from_v2026, lambda order: order.order_id, SEARCH_ORDERS.name
    )
    return OrderRecordPage(
        records=records,
        position=ListingPosition(api="v2026", v2026=page.position) if page.position else None,
        api="v2026",
        created_before=page.created_before,
        last_updated_before=page.last_updated_before,
        rejected=rejected,
    )


def _v0_page(
    page: GetOrdersPage, convert: Callable[[models_v0.Order], OrderRecord]
) -> OrderRecordPage:
    records, rejected = _normalized(
        page, convert, lambda order: order.amazon_order_id, GET_ORDERS.name
    )
    return OrderRecordPage(
        records=records,
        position=ListingPosition(api="v0", v0=page.position) if page.position else None,
        api="v0",
        created_before=page.created_before,
        last_updated_before=page.last_updated_before,
        rejected=rejected,
    )


def _retrieve(task: asyncio.Task[Any]) -> None:
    """A page task that fails after the reader gave up must not log "never retrieved"."""
    if not task.cancelled():
        task.exception()


class OrderLister:
    def __init__(
        self,
        orders: OrdersV2026Api,
        orders_v0: OrdersV0Api,
        state: ConnectionState,
        *,
        clock: Clock = time.monotonic,
    ) -> None:
        self._orders = orders
        self._orders_v0 = orders_v0
        self._state = state
        self._clock = clock

    async def list(
        self,
        query: ListingQuery,
        *,
        api: Api | None = None,
        position: ListingPosition | Mapping[str, Any] | None = None,
    ) -> AsyncGenerator[OrderRecordPage, None]:
        """Every order of the query with its items, page by page; resumes after ``position`` (a
        saved ``page.position``) if given. ``api=None`` picks v2026 and falls back to v0 on a 403
        from the first searchOrders."""
        saved = ListingPosition.model_validate(position) if position is not None else None
        chosen = saved.api if saved is not None else api
        if chosen is None and self._clock() < self._state.v2026_denied_until:
            chosen = "v0"
        if chosen != "v0":
            started = False
            try:
                async for page in self._v2026(
                    saved.v2026 if saved and saved.v2026 else _as(SearchOrdersQuery, query)
                ):
                    started = True
                    yield page
                return
            except AmazonAccessDenied:
                if started or chosen == "v2026":
                    raise
                logger.warning("searchOrders denied (403) for this seller: using Orders v0")
                self._state.v2026_denied_until = self._clock() + V2026_RETRY_AFTER
        async for page in self._v0(saved.v0 if saved and saved.v0 else _as(GetOrdersQuery, query)):
            yield page

    async def page(
        self,
        api: Api,
        window: Window,
        *,
        marketplace_ids: Sequence[str],
        position: ListingPosition | Mapping[str, Any] | None = None,
    ) -> OrderRecordPage:
        """Exactly one page (one list call) of the window's orders from ``api``: the first, or
        the one after ``position`` (a previous page's, same API and window). v2026 with the
        default ``includedData``; v0 with the bulk restricted data token and no items (a caller
        that wants them has them from the order report). ``AmazonApiUnavailable`` when Amazon
        answers 403 or 404: the API is refused to the seller, or gone."""
        saved = ListingPosition.model_validate(position) if position is not None else None
        if saved is not None and saved.api != api:
            raise ValueError(f"a {saved.api} position cannot continue a {api} listing")
        query = ListingQuery(marketplace_ids=marketplace_ids, window=window)
        try:
            if api == "v2026":
                page = await self._orders.page(
                    saved.v2026 if saved and saved.v2026 else _as(SearchOrdersQuery, query)
                )
                return _v2026_page(page)
            v0_page = await self._orders_v0.page(
                saved.v0 if saved and saved.v0 else _as(GetOrdersQuery, query)
            )
        except (AmazonAccessDenied, AmazonNotFound) as error:
            raise AmazonApiUnavailable(str(error), api=api) from error
        return _v0_page(v0_page, lambda order: normalize.from_v0(order, None))

    async def _v2026(
        self, start: SearchOrdersQuery | SearchPosition
    ) -> AsyncIterator[OrderRecordPage]:
        async for page in ahead(self._orders.pages(start), 1):
            yield _v2026_page(page)

    async def _v0(
        self, start: GetOrdersQuery | GetOrdersPosition
    ) -> AsyncIterator[OrderRecordPage]:
        pages = self._orders_v0.pages(start)
        async for assembled in ahead(self._with_items(pages), V0_PAGES_AHEAD):
            yield await assembled

    async def _with_items(
        self, pages: AsyncGenerator[GetOrdersPage, None]
    ) -> AsyncGenerator[Awaitable[OrderRecordPage], None]:
        """Each page as a task fetching its items, started the moment the page is listed."""
        tasks: list[asyncio.Task[OrderRecordPage]] = []
        try:
            async for page in pages:
                task = asyncio.create_task(self._assemble(page))
                task.add_done_callback(_retrieve)
                tasks.append(task)
                yield task
        except BaseException:
            for task in tasks:
                task.cancel()
            raise
        finally:
            await pages.aclose()

    async def _assemble(self, page: GetOrdersPage) -> OrderRecordPage:
        """The page's orders with their items. An order whose items Amazon sends in a shape
        KeyBuzz cannot read is set aside like an order that cannot be read."""
        fetched = await gather_or_cancel([self._items(order) for order in page.orders])
        items: dict[str, Sequence[models_v0.OrderItem]] = {}
        unreadable: dict[str, str] = {}
        for order, found in zip(page.orders, fetched, strict=True):
            if isinstance(found, AmazonMalformedResponse):
                unreadable[order.amazon_order_id] = str(found)
            else:
                items[order.amazon_order_id] = found

        def convert(order: models_v0.Order) -> OrderRecord:
            if order.amazon_order_id in unreadable:
                raise AmazonMalformedResponse(unreadable[order.amazon_order_id])
            return normalize.from_v0(order, items[order.amazon_order_id])

        return _v0_page(page, convert)

    async def _items(
        self, order: models_v0.Order
    ) -> Sequence[models_v0.OrderItem] | AmazonMalformedResponse:
        try:
            return await self._orders_v0.get_order_items(order.amazon_order_id, with_pii=False)
        except AmazonMalformedResponse as error:
            return error
