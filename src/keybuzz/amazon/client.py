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

What the sync engine drives step by step: ``reports`` (``request_reports``, ``report_state``,
``report_records``) for coverage, ``enrichment_page`` for enrichment, ``next_token_in`` to know
when an operation may go, ``bucket_snapshot`` / ``restore_buckets`` to carry the buckets from
one job step to the next in any process, and ``get_order_record(..., max_wait=...)`` for a
refresh that answers 429 rather than wait.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import SecretStr

from keybuzz.amazon import normalize
from keybuzz.amazon.config import SpApiConfig
from keybuzz.amazon.errors import AmazonAccessDenied
from keybuzz.amazon.listing import Api, ListingPosition, ListingQuery, OrderLister, OrderRecordPage
from keybuzz.amazon.lwa import Clock, LwaAuth, LwaClient
from keybuzz.amazon.operations import Operation
from keybuzz.amazon.orders_v0 import OrdersV0Api
from keybuzz.amazon.orders_v2026 import OrdersV2026Api
from keybuzz.amazon.ratelimit import BucketSnapshot, Priority
from keybuzz.amazon.regions import Region, endpoints
from keybuzz.amazon.registry import ConnectionRegistry
from keybuzz.amazon.reports import OrderReportQuery, ReportsApi
from keybuzz.amazon.retry import DEFAULT_RETRY, RetryPolicy
from keybuzz.amazon.sellers import SellersApi
from keybuzz.amazon.tokens import RestrictedDataAuth, TokensApi
from keybuzz.amazon.transport import CallStats, SpApiTransport
from keybuzz.amazon.windows import WallClock, Window, utcnow
from keybuzz.orders.records import OrderRecord, RejectedOrder


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
        priority: Priority = Priority.SYNC,
    ) -> None:
        """``clock`` (monotonic seconds) times token expiry, ``wall_clock`` (UTC) the 2-minute
        rule; tests move them. ``priority``: where this client's requests queue among those of
        other clients of the same connection in this process (a backfill's go last)."""
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
            priority=priority,
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

    async def enrichment_page(
        self,
        api: Api,
        window: Window,
        *,
        marketplace_ids: Sequence[str],
        position: ListingPosition | Mapping[str, Any] | None = None,
    ) -> OrderRecordPage:
        """Exactly one page of the window's orders from one API (one list call, on that
        operation's bucket): v2026 searchOrders with its default ``includedData``, or v0
        getOrders with the bulk restricted data token and no items (``from_v0(order, None)``).
        ``page.position`` continues the same window when Amazon has more. Raises
        ``AmazonApiUnavailable`` on a 403 or 404 (drop that API for the run; see also
        ``orders_v0.v0_available``)."""
        return await self._lister.page(
            api, window, marketplace_ids=marketplace_ids, position=position
        )

    async def get_order_record(
        self, order_id: str, *, max_wait: float | None = None
    ) -> OrderRecord:
        """One order with everything KeyBuzz keeps (v2026 getOrder; v0 getOrder + items on 403).
        ``max_wait``: raise ``AmazonQuotaExhausted`` (``retry_after`` seconds) instead of
        waiting longer than that for the seller's quota."""
        try:
            return normalize.from_v2026(await self.orders.get_order(order_id, max_wait=max_wait))
        except AmazonAccessDenied:
            order = await self.orders_v0.get_order(order_id, max_wait=max_wait)
            items = await self.orders_v0.get_order_items(order_id, max_wait=max_wait)
            return normalize.from_v0(order, items)

    def next_token_in(self, operation: Operation) -> float:
        """Seconds until a request of this client on ``operation`` could leave (requests
        already waiting served first); 0 if at once. Takes no token, waits for nothing."""
        return self.transport.bucket(operation).next_token_in(self.transport.priority)

    def bucket_snapshot(self) -> BucketSnapshot:
        """This connection's buckets as of now, to store with a job step's checkpoint
        (``model_dump(mode="json")``) and ``restore_buckets`` in the next step's process."""
        return self.state.buckets.snapshot()

    def restore_buckets(self, snapshot: BucketSnapshot | Mapping[str, Any]) -> None:
        """Take over the buckets saved by an earlier step (refilled for the time since)."""
        self.state.buckets.restore(snapshot)

    async def order_report_records(
        self, query: OrderReportQuery, *, first_poll: float = 2.0
    ) -> AsyncIterator[OrderRecord | RejectedOrder]:
        """The orders of flat-file reports over the range, as a stream, waiting for Amazon to
        generate them: every ≤ 30-day slice is requested at once, then read in order. Orders
        that cannot be stored come as ``RejectedOrder``. (A job that must not wait uses
        ``reports.request_reports`` / ``report_state`` / ``report_records`` itself.)"""
        report_ids = await self.reports.request_reports(query.slices())
        for report_id in report_ids:
            state = await self.reports.wait_for_report(report_id, first_poll=first_poll)
            if state.report_document_id is None:
                continue
            async for item in self.reports.report_records(state.report_document_id):
                yield item.order


@dataclass(frozen=True, slots=True)
class SpApiApp:
    """KeyBuzz's SP-API application at run time: its configuration, the HTTP client it talks
    through, and every connection's rate-limit buckets and tokens. One per process."""

    http: httpx.AsyncClient
    config: SpApiConfig
    registry: ConnectionRegistry
    retry: RetryPolicy = DEFAULT_RETRY

    def client(
        self,
        *,
        region: Region,
        refresh_token: SecretStr,
        connection_key: str,
        priority: Priority = Priority.SYNC,
    ) -> SpApiClient:
        return SpApiClient(
            self.http,
            self.config,
            region=region,
            refresh_token=refresh_token,
            connection_key=connection_key,
            registry=self.registry,
            retry=self.retry,
            priority=priority,
        )

    def lwa(self) -> LwaClient:
        return LwaClient(self.http, self.config, retry=self.retry)
