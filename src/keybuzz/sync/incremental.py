"""The incremental sync's units of work: every change Amazon made to a connection's orders since
its watermark, stored with the watermark moved on in the same transaction.

The sync pages ``searchOrders`` by last update from the watermark (the bound Amazon echoed last
time, never later than now - 2 minutes). After a long outage it first catches up through the
by-last-update order report (a few calls whatever the number of changes), then pages the rest.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from keybuzz.amazon.client import SpApiApp, SpApiClient
from keybuzz.amazon.listing import OrderRecordPage
from keybuzz.amazon.windows import LATEST_BEFORE, Window
from keybuzz.marketplaces import service as connections
from keybuzz.marketplaces.models import ConnectionStatus, MarketplaceConnection
from keybuzz.marketplaces.repository import get_connection, update_connection
from keybuzz.orders.models import EventSource
from keybuzz.orders.records import OrderRecord, RejectedOrder
from keybuzz.orders.upsert import upsert_orders
from keybuzz.secrets import SecretStore
from keybuzz.sync import quotas
from keybuzz.sync.backfill import store_rejected
from keybuzz.sync.plan import ReportSlice, report_slices
from keybuzz.tenants.models import TenantId

logger = logging.getLogger(__name__)

SOURCE = EventSource.SYNC
REPORT_LAG = dt.timedelta(minutes=30)
"""Order reports may miss the last half hour's changes: the paging after a catch-up redoes it."""


class SyncPosition(BaseModel):
    """Where an unfinished sync resumes (the connection's ``sync_position``)."""

    catch_up: list[ReportSlice] = []
    """By-last-update reports still to read; the paging starts once they are."""
    page: dict[str, Any] | None = None
    """The ``searchOrders`` position after the last page stored."""


@dataclass
class SyncRun:
    connection: MarketplaceConnection
    client: SpApiClient
    position: SyncPosition

    @property
    def tenant_id(self) -> TenantId:
        return TenantId(self.connection.tenant_id)

    @property
    def watermark(self) -> dt.datetime:
        assert self.connection.synced_through is not None
        return self.connection.synced_through

    def window(self) -> Window:
        return Window(last_updated_after=self.watermark)


async def open_sync(
    session: AsyncSession,
    amazon: SpApiApp,
    store: SecretStore,
    tenant_id: TenantId,
    *,
    catch_up_after: dt.timedelta,
) -> SyncRun | None:
    """The connection to sync, with the seller's quota as the last job left it; ``None`` when
    it is not CONNECTED or has never been backfilled (nothing to sync from)."""
    connection = await get_connection(session, tenant_id, connections.AMAZON)
    if (
        connection is None
        or connection.status is not ConnectionStatus.CONNECTED
        or connection.synced_through is None
    ):
        return None
    usable = await connections.usable_connection(session, store, tenant_id)
    client = connections.amazon_client(amazon, usable.connection, usable.refresh_token)
    quotas.restore(client, usable.connection)
    position = SyncPosition.model_validate(connection.sync_position or {})
    now = dt.datetime.now(dt.UTC)
    if position.page is None and not position.catch_up:
        behind = now - connection.synced_through
        if behind > catch_up_after:
            position.catch_up = report_slices(connection.synced_through, now - LATEST_BEFORE)
            logger.info("sync of %s is %s behind: catching up through reports", tenant_id, behind)
    return SyncRun(usable.connection, client, position)


async def store_changes(
    session: AsyncSession,
    run: SyncRun,
    records: list[OrderRecord],
    rejected: list[RejectedOrder],
) -> None:
    """Changed and new orders (and those that cannot be stored), with where the sync stands."""
    await upsert_orders(session, run.tenant_id, records, source=SOURCE)
    await store_rejected(session, run.tenant_id, rejected, None)
    await save(session, run)


async def store_page(session: AsyncSession, run: SyncRun, page: OrderRecordPage) -> None:
    run.position.page = page.position.model_dump(mode="json") if page.position else None
    await store_changes(session, run, page.records, page.rejected)
    if page.position is None:
        watermark = page.last_updated_before or (dt.datetime.now(dt.UTC) - LATEST_BEFORE)
        await _advance(session, run, watermark)


async def end_catch_up(session: AsyncSession, run: SyncRun) -> None:
    """The reports are read: what they cover, but their last half hour, is synced."""
    end = max(s.end for s in run.position.catch_up)
    run.position.catch_up = []
    await _advance(session, run, max(run.watermark, end - REPORT_LAG))


async def _advance(session: AsyncSession, run: SyncRun, watermark: dt.datetime) -> None:
    run.connection = await update_connection(
        session, run.connection, synced_through=watermark, last_sync_at=dt.datetime.now(dt.UTC)
    )
    await save(session, run)


async def save(session: AsyncSession, run: SyncRun) -> None:
    position = run.position
    run.connection = await update_connection(
        session,
        run.connection,
        sync_position=position.model_dump(mode="json")
        if position.page or position.catch_up
        else None,
        quota_state=quotas.snapshot(run.client),
    )


async def finish(session: AsyncSession, run: SyncRun, interval: dt.timedelta) -> dt.datetime:
    """Caught up: the next sync's time, recorded on the connection."""
    next_at = dt.datetime.now(dt.UTC) + interval
    run.connection = await update_connection(
        session, run.connection, next_sync_at=next_at, last_sync_at=dt.datetime.now(dt.UTC)
    )
    await save(session, run)
    return next_at
