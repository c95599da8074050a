"""Every order of a window, with its items, as ``OrderRecord`` pages: Orders v2026 first, Orders
v0 for sellers whose searchOrders answers 403.

The operations run as pipelines, each paced by its own bucket: with v2026 the next searchOrders
page is fetched while the caller stores the current one; with v0, getOrders runs ahead while
getOrderItems calls for the pages already listed go out at their own rate. A page is handed
over once all of its items are in, with a position from which a later run resumes after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict

from keybuzz.amazon import normalize
from keybuzz.amazon.errors import AmazonAccessDenied
from keybuzz.amazon.lwa import Clock
from keybuzz.amazon.orders_v0 import GetOrdersPage, GetOrdersPosition, GetOrdersQuery, OrdersV0Api
from keybuzz.amazon.orders_v2026 import OrdersV2026Api, SearchOrdersQuery, SearchPosition
from keybuzz.amazon.paging import OrdersQuery
from keybuzz.amazon.registry import ConnectionState
from keybuzz.amazon.windows import Window
from keybuzz.orders.records import OrderRecord

logger = logging.getLogger("keybuzz.amazon")

T = TypeVar("T")
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


async def ahead(source: AsyncGenerator[T, None], depth: int) -> AsyncIterator[T]:
    """``source`` iterated by a background task, at most ``depth`` items ahead of the reader."""
    # A 1-tuple is an item, an exception the source's failure, None its end.
    queue: asyncio.Queue[tuple[T] | BaseException | None] = asyncio.Queue(depth)

    async def pump() -> None:
        try:
            async for item in source:
                await queue.put((item,))
        except Exception as error:
            await queue.put(error)
        else:
            await queue.put(None)

    task = asyncio.create_task(pump())
    try:
        while (entry := await queue.get()) is not None:
            if isinstance(entry, BaseException):
                raise entry
            yield entry[0]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await source.aclose()


async def gather_or_cancel(calls: Sequence[Awaitable[T]]) -> list[T]:
    """All results, or the first failure with the other calls cancelled (no stray requests)."""
    tasks = [asyncio.ensure_future(call) for call in calls]
    try:
        return await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def _as(api_query: type[Q], query: ListingQuery) -> Q:
    """The listing's query in the terms of one API (its other filters left at their defaults)."""
    return api_query.model_validate(query, from_attributes=True)


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

    async def _v2026(
        self, start: SearchOrdersQuery | SearchPosition
    ) -> AsyncIterator[OrderRecordPage]:
        async for page in ahead(self._orders.pages(start), 1):
            yield OrderRecordPage(
                records=[normalize.from_v2026(order) for order in page.orders],
                position=ListingPosition(api="v2026", v2026=page.position)
                if page.position
                else None,
                api="v2026",
                created_before=page.created_before,
                last_updated_before=page.last_updated_before,
            )

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
        items = await gather_or_cancel(
            [
                self._orders_v0.get_order_items(order.amazon_order_id, with_pii=False)
                for order in page.orders
            ]
        )
        return OrderRecordPage(
            records=[normalize.from_v0(o, i) for o, i in zip(page.orders, items, strict=True)],
            position=ListingPosition(api="v0", v0=page.position) if page.position else None,
            api="v0",
            created_before=page.created_before,
            last_updated_before=page.last_updated_before,
        )
