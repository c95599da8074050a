"""Orders API v0 — the fallback for sellers whose searchOrders answers 403, and a second list
operation (its own bucket) for enrichment, until Amazon removes it on 2027-03-27
(``v0_available``): getOrders (pages resumable from a saved position), getOrder, getOrderItems.

PII comes through the connection's bulk restricted data token. If Amazon refuses to mint one
(the app lacks the roles), calls carry the plain access token and orders come without buyer
names or street addresses, as Amazon then sends them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import Field, model_validator

from keybuzz.amazon import models_v0
from keybuzz.amazon.errors import AmazonAccessDenied
from keybuzz.amazon.lwa import Clock
from keybuzz.amazon.operations import GET_ORDER_ITEMS, GET_ORDER_V0, GET_ORDERS
from keybuzz.amazon.paging import OrderReader, OrdersPage, OrdersQuery, Pager, Params, Position
from keybuzz.amazon.registry import ConnectionState
from keybuzz.amazon.tokens import RestrictedDataAuth
from keybuzz.amazon.transport import SpApiTransport
from keybuzz.amazon.windows import WallClock, Window, utcnow

logger = logging.getLogger("keybuzz.amazon")

PII_RETRY_AFTER = 3600.0
V0_REMOVAL = datetime(2027, 3, 27, tzinfo=UTC)
"""Amazon's deadline for leaving the v0 read operations (spapi.md §2: "v0 users must migrate by
March 27, 2027"): from then on, v0 is not asked at all."""


def v0_available(now: datetime) -> bool:
    """Whether Orders v0 may still be asked at ``now`` (a 403 or 404 from it earlier is the
    other sign it is gone: ``AmazonApiUnavailable`` from ``SpApiClient.enrichment_page``)."""
    return now < V0_REMOVAL


class GetOrdersQuery(OrdersQuery):
    DATE_NAMES = ("CreatedAfter", "CreatedBefore", "LastUpdatedAfter", "LastUpdatedBefore")
    LIST_NAMES = (
        ("marketplace_ids", "MarketplaceIds"),
        ("order_statuses", "OrderStatuses"),
        ("fulfillment_channels", "FulfillmentChannels"),
        ("amazon_order_ids", "AmazonOrderIds"),
    )
    PAGE_SIZE_NAME = "MaxResultsPerPage"
    NEXT_TOKEN_NAME = "NextToken"

    marketplace_ids: tuple[str, ...] = Field(min_length=1, max_length=50)
    order_statuses: tuple[str, ...] = ()
    fulfillment_channels: tuple[str, ...] = ()
    amazon_order_ids: tuple[str, ...] = Field(default=(), max_length=50)

    @model_validator(mode="after")
    def _searchable(self) -> GetOrdersQuery:
        if not self.window.is_set and not self.amazon_order_ids:
            raise ValueError("give created_after, last_updated_after or amazon_order_ids")
        return self


GetOrdersPosition = Position[GetOrdersQuery]
GetOrdersPage = OrdersPage[models_v0.Order, GetOrdersQuery]


class OrdersV0Api:
    def __init__(
        self,
        transport: SpApiTransport,
        restricted: RestrictedDataAuth,
        state: ConnectionState,
        *,
        clock: Clock = time.monotonic,
        wall_clock: WallClock = utcnow,
    ) -> None:
        self._transport = transport
        self._restricted = restricted
        self._state = state
        self._clock = clock
        self._wall_clock = wall_clock

    async def get_orders(
        self,
        *,
        marketplace_ids: Sequence[str] = (),
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        last_updated_after: datetime | None = None,
        last_updated_before: datetime | None = None,
        order_statuses: Sequence[str] = (),
        fulfillment_channels: Sequence[str] = (),
        amazon_order_ids: Sequence[str] = (),
        max_results_per_page: int = 100,
        with_pii: bool = True,
        position: GetOrdersPosition | Mapping[str, Any] | None = None,
    ) -> AsyncGenerator[GetOrdersPage, None]:
        """Pages of orders. With ``position`` (a saved ``page.position``), the search it belongs
        to resumes after that page and the other filters are not used."""
        start: GetOrdersQuery | GetOrdersPosition
        if position is not None:
            start = GetOrdersPosition.model_validate(position)
        else:
            start = GetOrdersQuery(
                marketplace_ids=tuple(marketplace_ids),
                window=Window(
                    created_after=created_after,
                    created_before=created_before,
                    last_updated_after=last_updated_after,
                    last_updated_before=last_updated_before,
                ),
                order_statuses=tuple(order_statuses),
                fulfillment_channels=tuple(fulfillment_channels),
                amazon_order_ids=tuple(amazon_order_ids),
                max_results_per_page=max_results_per_page,
            )
        async for page in self.pages(start, with_pii=with_pii):
            yield page

    def pages(
        self, start: GetOrdersQuery | GetOrdersPosition, *, with_pii: bool = True
    ) -> AsyncGenerator[GetOrdersPage, None]:
        """The pages of a new getOrders search, or of a saved one after its position. Orders
        that do not fit the model are in ``page.rejected``."""
        return self._pager(with_pii).pages(start)

    async def page(
        self, start: GetOrdersQuery | GetOrdersPosition, *, with_pii: bool = True
    ) -> GetOrdersPage:
        """Exactly one page: the first of a new search, or the one after a saved position."""
        return await self._pager(with_pii).first_page(start)

    def _pager(self, with_pii: bool) -> Pager[models_v0.Order, GetOrdersQuery]:
        async def get_page(params: Params) -> models_v0.OrdersList:
            response = await self._transport.call(
                GET_ORDERS,
                models_v0.GetOrdersResponse,
                params=params,
                auth=await self._auth(with_pii),
            )
            return response.payload

        reader = OrderReader(models_v0.Order, GET_ORDERS.name, "AmazonOrderId")
        return Pager(GetOrdersPosition, reader, get_page, self._wall_clock)

    async def get_order(
        self, order_id: str, *, with_pii: bool = True, max_wait: float | None = None
    ) -> models_v0.Order:
        response = await self._transport.call(
            GET_ORDER_V0,
            models_v0.GetOrderResponse,
            path_params={"orderId": order_id},
            auth=await self._auth(with_pii),
            max_wait=max_wait,
        )
        return response.payload

    async def get_order_items(
        self, order_id: str, *, with_pii: bool = True, max_wait: float | None = None
    ) -> list[models_v0.OrderItem]:
        """Every item of the order (all NextToken pages)."""
        items: list[models_v0.OrderItem] = []
        next_token: str | None = None
        while True:
            params = [("NextToken", next_token)] if next_token else []
            response = await self._transport.call(
                GET_ORDER_ITEMS,
                models_v0.GetOrderItemsResponse,
                path_params={"orderId": order_id},
                params=params,
                auth=await self._auth(with_pii),
                max_wait=max_wait,
            )
            items.extend(response.payload.order_items)
            next_token = response.payload.next_token or None
            if next_token is None:
                return items

    async def _auth(self, with_pii: bool) -> httpx.Auth | None:
        """The RDT auth when PII is wanted and Amazon grants it, else the default auth."""
        if not with_pii or self._clock() < self._state.pii_denied_until:
            return None
        try:
            await self._restricted.token()
        except AmazonAccessDenied:
            logger.warning("restricted data token refused: v0 orders come without PII for now")
            self._state.pii_denied_until = self._clock() + PII_RETRY_AFTER
            return None
        return self._restricted
