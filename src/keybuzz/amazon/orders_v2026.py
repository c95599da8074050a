"""Orders API v2026-01-01: searchOrders (pages resumable from a saved position) and getOrder.

Items are always inline; ``includedData`` decides the rest (the default asks for everything the
internal order model uses). Every page resends the first page's parameters unchanged, as the
pagination contract requires; a saved position carries them. A position is good for 24 hours
(Amazon's token lifetime).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from keybuzz.amazon import models_v2026
from keybuzz.amazon.operations import GET_ORDER, SEARCH_ORDERS
from keybuzz.amazon.transport import SpApiTransport
from keybuzz.amazon.windows import WallClock, Window, utcnow

DATE_NAMES = ("createdAfter", "createdBefore", "lastUpdatedAfter", "lastUpdatedBefore")
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


class SearchOrdersQuery(BaseModel):
    model_config = ConfigDict(frozen=True)

    window: Window
    marketplace_ids: tuple[str, ...] = Field(default=(), max_length=50)
    fulfillment_statuses: tuple[str, ...] = ()
    fulfilled_by: tuple[str, ...] = ()
    included_data: tuple[str, ...] = DEFAULT_INCLUDED_DATA
    max_results_per_page: int = Field(default=100, ge=1, le=100)

    def params(self) -> list[tuple[str, str]]:
        params = self.window.params(DATE_NAMES)
        for name, values in (
            ("marketplaceIds", self.marketplace_ids),
            ("fulfillmentStatuses", self.fulfillment_statuses),
            ("fulfilledBy", self.fulfilled_by),
            ("includedData", self.included_data),
        ):
            if values:
                params.append((name, ",".join(values)))
        params.append(("maxResultsPerPage", str(self.max_results_per_page)))
        return params


class SearchPosition(BaseModel):
    """Where a searchOrders listing stands; ``model_dump(mode="json")`` to save it."""

    model_config = ConfigDict(frozen=True)

    query: SearchOrdersQuery
    next_token: str


@dataclass(frozen=True, slots=True)
class SearchOrdersPage:
    orders: list[models_v2026.Order]
    position: SearchPosition | None
    """Resume after this page from here; ``None`` on the last page."""
    created_before: datetime | None = None
    last_updated_before: datetime | None = None
    """The upper bound Amazon applied: the next incremental run's ``last_updated_after``."""


class OrdersV2026Api:
    def __init__(self, transport: SpApiTransport, *, wall_clock: WallClock = utcnow) -> None:
        self._transport = transport
        self._wall_clock = wall_clock

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
        search it belongs to resumes after that page and the other filters are not used."""
        next_token: str | None = None
        if position is not None:
            saved = SearchPosition.model_validate(position)
            query, next_token = saved.query, saved.next_token
        else:
            now = self._wall_clock()
            window = Window(
                created_after=created_after,
                created_before=created_before,
                last_updated_after=last_updated_after,
                last_updated_before=last_updated_before,
            )
            if not window.is_set:
                raise ValueError("searchOrders needs created_after or last_updated_after")
            query = SearchOrdersQuery(
                window=window.legal(now),
                marketplace_ids=tuple(marketplace_ids),
                fulfillment_statuses=tuple(fulfillment_statuses),
                fulfilled_by=tuple(fulfilled_by),
                included_data=tuple(included_data),
                max_results_per_page=max_results_per_page,
            )
            if query.window.is_empty(now):
                yield SearchOrdersPage([], None)
                return
        while True:
            params = query.params()
            if next_token is not None:
                params.append(("paginationToken", next_token))
            response = await self._transport.call(
                SEARCH_ORDERS, models_v2026.SearchOrdersResponse, params=params
            )
            next_token = response.pagination.next_token if response.pagination else None
            yield SearchOrdersPage(
                orders=response.orders,
                position=SearchPosition(query=query, next_token=next_token) if next_token else None,
                created_before=response.created_before,
                last_updated_before=response.last_updated_before,
            )
            if not next_token:
                return

    async def get_order(
        self, order_id: str, *, included_data: Sequence[str] = DEFAULT_INCLUDED_DATA
    ) -> models_v2026.Order:
        params = [("includedData", ",".join(included_data))] if included_data else []
        response = await self._transport.call(
            GET_ORDER,
            models_v2026.GetOrderResponse,
            path_params={"orderId": order_id},
            params=params,
        )
        return response.order
