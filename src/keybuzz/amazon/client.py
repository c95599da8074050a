"""``SpApiClient``: everything KeyBuzz asks Amazon about one connection (one seller's refresh
token in one region), over the process's shared ``httpx.AsyncClient``.

    amazon = SpApiApp(http, config, ConnectionRegistry())  # once per process (the runtime's)
    client = amazon.client(region=Region.EU, refresh_token=token, connection_key="t-001/amazon")
    await client.check_credentials()
    query = ListingQuery(marketplace_ids=[FR], window=Window(created_after=since))
    async for page in client.list_order_records(query):
        ...  # page.records, then save page.position

Rate-limit buckets and cached tokens live in the ``ConnectionRegistry`` under ``connection_key``,
so clients built per job share them and two connections never do.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import SecretStr

from keybuzz.amazon import normalize
from keybuzz.amazon.config import SpApiConfig
from keybuzz.amazon.errors import AmazonAccessDenied
from keybuzz.amazon.flatfile import group_by_order
from keybuzz.amazon.listing import Api, ListingPosition, ListingQuery, OrderLister, OrderRecordPage
from keybuzz.amazon.lwa import Clock, LwaAuth, LwaClient
from keybuzz.amazon.orders_v0 import OrdersV0Api
from keybuzz.amazon.orders_v2026 import OrdersV2026Api
from keybuzz.amazon.regions import Region, endpoints
from keybuzz.amazon.registry import ConnectionRegistry
from keybuzz.amazon.reports import OrderReportQuery, ReportsApi
from keybuzz.amazon.retry import DEFAULT_RETRY, RetryPolicy
from keybuzz.amazon.sellers import SellersApi
from keybuzz.amazon.tokens import RestrictedDataAuth, TokensApi
from keybuzz.amazon.transport import CallStats, SpApiTransport
from keybuzz.amazon.windows import WallClock, utcnow
from keybuzz.orders.records import OrderRecord


class SpApiClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        config: SpApiConfig,
        *,
        region: Region,
        refresh_token: SecretStr,
        connection_key: str,
        registry: ConnectionRegistry,
        clock: Clock = time.monotonic,
        wall_clock: WallClock = utcnow,
        retry: RetryPolicy = DEFAULT_RETRY,
    ) -> None:
        """``clock`` (monotonic seconds) times token expiry, ``wall_clock`` (UTC) the 2-minute
        rule; tests move them."""
        self.region = region
        self.endpoints = endpoints(config, region)
        self.state = registry.state(
            connection_key, refresh_token=refresh_token, sandbox=config.sandbox
        )
        self.lwa = LwaClient(http, config, retry=retry)
        self.auth = LwaAuth(self.lwa, refresh_token, self.state.access_token, clock)
        self.transport = SpApiTransport(
            http,
            base_url=self.endpoints.spapi,
            auth=self.auth,
            buckets=self.state.buckets,
            timeout=config.timeout_seconds,
            retry=retry,
        )
        self.sellers = SellersApi(self.transport)
        self.tokens = TokensApi(self.transport)
        self.orders = OrdersV2026Api(self.transport, wall_clock=wall_clock)
        self.orders_v0 = OrdersV0Api(
            self.transport,
            RestrictedDataAuth(self.tokens, self.state.restricted_data_token, clock),
            self.state,
            clock=clock,
            wall_clock=wall_clock,
        )
        self.reports = ReportsApi(self.transport, http, timeout=config.timeout_seconds)
        self._lister = OrderLister(self.orders, self.orders_v0, self.state, clock=clock)

    @property
    def stats(self) -> CallStats:
        return self.transport.stats

    async def check_credentials(self) -> None:
        """Mint a new access token: cheap, no SP-API quota used. Raises
        ``AmazonAuthorizationRevoked`` (reconnect) or ``AmazonAppCredentialsInvalid``."""
        await self.auth.refresh()

    def list_order_records(
        self,
        query: ListingQuery,
        *,
        api: Api | None = None,
        position: ListingPosition | Mapping[str, Any] | None = None,
    ) -> AsyncGenerator[OrderRecordPage, None]:
        """Every order of the query with its items, page by page (see ``listing``)."""
        return self._lister.list(query, api=api, position=position)

    async def get_order_record(self, order_id: str) -> OrderRecord:
        """One order with everything KeyBuzz keeps (v2026 getOrder; v0 getOrder + items on 403)."""
        try:
            return normalize.from_v2026(await self.orders.get_order(order_id))
        except AmazonAccessDenied:
            order = await self.orders_v0.get_order(order_id)
            return normalize.from_v0(order, await self.orders_v0.get_order_items(order_id))

    async def order_report_records(
        self, query: OrderReportQuery, *, first_poll: float = 2.0
    ) -> AsyncIterator[OrderRecord]:
        """The orders of flat-file reports over the range (≤ 30-day slices), as a stream."""
        rows = self.reports.order_report_rows(query, first_poll=first_poll)
        async for group in group_by_order(rows):
            yield normalize.from_report_rows(group)


@dataclass(frozen=True, slots=True)
class SpApiApp:
    """KeyBuzz's SP-API application at run time: its configuration, the HTTP client it talks
    through, and every connection's rate-limit buckets and tokens. One per process."""

    http: httpx.AsyncClient
    config: SpApiConfig
    registry: ConnectionRegistry
    retry: RetryPolicy = DEFAULT_RETRY

    def client(
        self, *, region: Region, refresh_token: SecretStr, connection_key: str
    ) -> SpApiClient:
        return SpApiClient(
            self.http,
            self.config,
            region=region,
            refresh_token=refresh_token,
            connection_key=connection_key,
            registry=self.registry,
            retry=self.retry,
        )

    def lwa(self) -> LwaClient:
        return LwaClient(self.http, self.config, retry=self.retry)
