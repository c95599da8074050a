"""Orders API v2026-01-01: searchOrders (pages resumable from a saved position) and getOrder.

Items are always inline; ``includedData`` decides the rest (the default asks for everything the
internal order model uses). Every page resends the first page's parameters unchanged, as the
pagination contract requires; a saved position carries them. A position is good for 24 hours
(Amazon's token lifetime).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import Field, model_validator

from keybuzz.amazon import models_v2026
from keybuzz.amazon.operations import GET_ORDER, SEARCH_ORDERS
from keybuzz.amazon.paging import OrderReader, OrdersPage, OrdersQuery, Pager, Params, Position
from keybuzz.amazon.transport import SpApiTransport
from keybuzz.amazon.windows import WallClock, Window, utcnow

INCLUDED_DATA = (
    "BUYER",
    "RECIPIENT",
    "PROCEEDS",
    "EXPENSE",
    "PROMOTION",
    "CANCELLATION",
    "FULFILLMENT",
    "PACKAGES",
    "TAX",
    "PAYMENT",
    "FULFILLMENT_ORDERS",
)
# What normalisation reads: status and deadlines, totals, buyer, address, tracking.
DEFAULT_INCLUDED_DATA = ("BUYER", "RECIPIENT", "PROCEEDS", "FULFILLMENT", "PACKAGES")


class SearchOrdersQuery(OrdersQuery):
    DATE_NAMES = ("createdAfter", "createdBefore", "lastUpdatedAfter", "lastUpdatedBefore")
    LIST_NAMES = (
        ("marketplace_ids", "marketplaceIds"),
        ("fulfillment_statuses", "fulfillmentStatuses"),
        ("fulfilled_by", "fulfilledBy"),
        ("included_data", "includedData"),
    )
    PAGE_SIZE_NAME = "maxResultsPerPage"
    NEXT_TOKEN_NAME = "paginationToken"

    marketplace_ids: tuple[str, ...] = Field(default=(), max_length=50)
    fulfillment_statuses: tuple[str, ...] = ()
    fulfilled_by: tuple[str, ...] = ()
    included_data: tuple[str, ...] = DEFAULT_INCLUDED_DATA

    @model_validator(mode="after")
    def _searchable(self) -> SearchOrdersQuery:
        if not self.window.is_set:
            raise ValueError("searchOrders needs created_after or last_updated_after")
        return self


SearchPosition = Position[SearchOrdersQuery]
SearchOrdersPage = OrdersPage[models_v2026.Order, SearchOrdersQuery]


class OrdersV2026Api:
    def __init__(self, transport: SpApiTransport, *, wall_clock: WallClock = utcnow) -> None:
        self._transport = transport
        self._pager = Pager(
            SearchPosition,
            OrderReader(models_v2026.Order, SEARCH_ORDERS.name, "orderId"),
            self._search_page,
            wall_clock,
        )

    async def search_orders(
        self,
        *,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        last_updated_after: datetime | None = None,
        last_updated_before: datetime | None = None,
        marketplace_ids: Sequence[str] = (),
        fulfillment_statuses: Sequence[str] = (),
        fulfilled_by: Sequence[str] = (),
        included_data: Sequence[str] = DEFAULT_INCLUDED_DATA,
        max_results_per_page: int = 100,
        position: SearchPosition | Mapping[str, Any] | None = None,
    ) -> AsyncGenerator[SearchOrdersPage, None]:
        """Pages of orders with their items. With ``position`` (a saved ``page.position``), the
        search it belongs to resumes after that page and the other filters are not used. Orders
        that do not fit the model are in ``page.rejected``."""
        start: SearchOrdersQuery | SearchPosition
        if position is not None:
            start = SearchPosition.model_validate(position)
        else:
            start = SearchOrdersQuery(
                window=Window(
                    created_after=created_after,
                    created_before=created_before,
                    last_updated_after=last_updated_after,
                    last_updated_before=last_updated_before,
                ),
                marketplace_ids=tuple(marketplace_ids),
                fulfillment_statuses=tuple(fulfillment_statuses),
                fulfilled_by=tuple(fulfilled_by),
                included_data=tuple(included_data),
                max_results_per_page=max_results_per_page,
            )
        async for page in self.pages(start):
            yield page

    def pages(
        self, start: SearchOrdersQuery | SearchPosition
    ) -> AsyncGenerator[SearchOrdersPage, None]:
        """The pages of a new search, or of a saved one after its position."""
        return self._pager.pages(start)

    async def page(self, start: SearchOrdersQuery | SearchPosition) -> SearchOrdersPage:
        """Exactly one page: the first of a new search, or the one after a saved position."""
        return await self._pager.first_page(start)

    async def _search_page(self, params: Params) -> models_v2026.SearchOrdersResponse:
        return await self._transport.call(
            SEARCH_ORDERS, models_v2026.SearchOrdersResponse, params=params
        )

    async def get_order(
        self,
        order_id: str,
        *,
        included_data: Sequence[str] = DEFAULT_INCLUDED_DATA,
        max_wait: float | None = None,
    ) -> models_v2026.Order:
        """``max_wait``: ``AmazonQuotaExhausted`` rather than wait longer for the quota."""
        params = [("includedData", ",".join(included_data))] if included_data else []
        response = await self._transport.call(
            GET_ORDER,
            models_v2026.GetOrderResponse,
            path_params={"orderId": order_id},
            params=params,
            max_wait=max_wait,
        )
        return response.order
