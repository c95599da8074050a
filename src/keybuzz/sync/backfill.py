"""A backfill's units of work: each takes the step's session, changes what one page, one report
chunk or one phase change means, and saves the plan with it. The loops that call them, and the
transactions around them, are the job's (``sync.engine``)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from time import monotonic
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from keybuzz.amazon.client import SpApiApp, SpApiClient
from keybuzz.amazon.orders_v0 import v0_available
from keybuzz.amazon.ratelimit import Priority
from keybuzz.errors import KeyBuzzError
from keybuzz.marketplaces import service as connections
from keybuzz.marketplaces.models import MarketplaceConnection
from keybuzz.marketplaces.repository import update_connection
from keybuzz.orders.models import EventSource
from keybuzz.orders.records import OrderRecord, RejectedOrder
from keybuzz.orders.repository import delete_orders, quarantine_orders
from keybuzz.orders.upsert import upsert_orders
from keybuzz.secrets import SecretStore
from keybuzz.sync import plan as planning
from keybuzz.sync import quotas, repository
from keybuzz.sync.models import BackfillJob, BackfillPhase, BackfillStatus
from keybuzz.sync.plan import BackfillPlan
from keybuzz.tenants.models import TenantId

logger = logging.getLogger(__name__)

SOURCE = EventSource.BACKFILL
RECOUNT_SECONDS = 5.0
"""How often a running enrichment counts the orders it has left (its progress and ETA); in
between, each page's orders are taken off the last count. The count reads every order left:
made at every page, it took 12 of PostgreSQL's 73 CPU-s over the 1,000 pages of a
100,000-order backfill."""


class BackfillCancelled(Exception):
    """The job was cancelled while a step ran: the step stops at this page boundary."""


@dataclass
class LeftToEnrich:
    orders: int
    counted_at: float
    """``monotonic()`` of the count."""

    def enriched(self, orders: int) -> None:
        self.orders = max(0, self.orders - orders)


@dataclass
class BackfillRun:
    """A backfill step in progress: its job, its plan, and Amazon for its connection."""

    job: BackfillJob
    plan: BackfillPlan
    connection: MarketplaceConnection
    client: SpApiClient
    saving: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Operations page at the same time; their saves of the one plan take turns."""
    left_to_enrich: LeftToEnrich | None = None
    """The orders left to enrich as last counted, less the pages enriched since."""

    @property
    def tenant_id(self) -> TenantId:
        return TenantId(self.job.tenant_id)


async def open_step(
    session: AsyncSession,
    amazon: SpApiApp,
    store: SecretStore,
    tenant_id: TenantId,
    job_id: uuid.UUID,
) -> BackfillRun | None:
    """The job, RUNNING, with its plan and a client that has the seller's quota as the last
    step left it; ``None`` when the job is over (cancelled, done): nothing to do."""
    job = await repository.get_job(session, tenant_id, job_id)
    if job is None or job.status not in repository.ACTIVE:
        return None
    usable = await connections.usable_connection(session, store, tenant_id)
    client = connections.amazon_client(
        amazon, usable.connection, usable.refresh_token, Priority.BACKFILL
    )
    quotas.restore(client, usable.connection)
    job = await repository.update_job(
        session,
        job,
        status=BackfillStatus.RUNNING,
        started_at=job.started_at or dt.datetime.now(dt.UTC),
    )
    plan = BackfillPlan.model_validate(job.checkpoint or {})
    return BackfillRun(job, plan, usable.connection, client)


async def purge(session: AsyncSession, run: BackfillRun) -> None:
    """Delete the tenant's orders of the marketplace, alone in its transaction."""
    deleted = await delete_orders(session, run.tenant_id, run.job.marketplace)
    logger.info("backfill %s purged %d orders of %s", run.job.id, deleted, run.tenant_id)
    run.plan.purged = True
    await save(session, run)


async def plan_coverage(session: AsyncSession, run: BackfillRun) -> None:
    """The window's report slices, and whether any of its orders is stored already."""
    job = run.job
    run.plan.slices = planning.report_slices(job.window_start, job.window_end)
    run.plan.fresh = not await repository.any_order_between(
        session, run.tenant_id, job.marketplace, job.window_start, job.window_end
    )
    await save(session, run)


async def store_records(
    session: AsyncSession,
    run: BackfillRun,
    records: list[OrderRecord],
    rejected: list[RejectedOrder],
    *,
    enriching: bool,
    before_save: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """A chunk of a report or a page of an API: its orders, and those Amazon sent that cannot
    be stored (quarantined), counted on the job; ``before_save`` is awaited between the rows
    and the job's save."""
    expect_new = run.plan.fresh and not enriching
    await upsert_orders(session, run.tenant_id, records, source=SOURCE, expect_new=expect_new)
    quarantined = await store_rejected(session, run.tenant_id, rejected, run.job.id)
    if before_save is not None:
        await before_save()
    counted = {"quarantined": quarantined}
    if enriching:
        counted["orders_enriched"] = len(records)
        if run.left_to_enrich is not None:
            run.left_to_enrich.enriched(len(records))
    else:
        counted["orders_stored"] = len(records)
        counted["items_stored"] = sum(len(r.items or ()) for r in records)
    await save(session, run, counted)


async def store_rejected(
    session: AsyncSession,
    tenant_id: TenantId,
    rejected: list[RejectedOrder],
    job_id: uuid.UUID | None,
) -> int:
    if not rejected:
        return 0
    return await quarantine_orders(session, tenant_id, rejected, backfill_job_id=job_id)


async def start_enrichment(session: AsyncSession, run: BackfillRun) -> None:
    """The coverage is complete: plan the enrichment of the orders only a report told of (all
    of them, the first time), newest first."""
    job = run.job
    total = await repository.count_to_enrich(
        session, run.tenant_id, job.marketplace, job.window_start, job.window_end
    )
    run.plan.enrichment_total = total
    run.plan.next_before = job.window_end if total else None
    run.left_to_enrich = LeftToEnrich(total, monotonic())  # the save's progress counts no more
    await save(session, run, phase=BackfillPhase.ENRICHMENT)


def window_left(run: BackfillRun) -> bool:
    """Whether ``take_window`` may still hand out a window (without asking the database)."""
    plan = run.plan
    return plan.next_before is not None or any(api in plan.in_flight for api in plan.dropped)


async def take_window(
    session: AsyncSession, run: BackfillRun, api: str
) -> planning.PagingCursor | None:
    """The window ``api`` pages next: one a dropped operation left half done, else the next
    newest; ``None`` when none is left."""
    plan = run.plan
    for dropped in plan.dropped:
        orphan = plan.in_flight.pop(dropped, None)
        if orphan is not None:
            plan.in_flight[api] = orphan
            return orphan
    if plan.next_before is None:
        return None
    job = run.job
    dates = await repository.order_dates_below(
        session,
        run.tenant_id,
        job.marketplace,
        floor=job.window_start,
        before=plan.next_before,
        limit=planning.PAGE_SIZE + 1,
    )
    window = planning.next_window(dates, plan.next_before, job.window_start)
    if window is None:
        plan.next_before = None
        return None
    plan.next_before = window.after if window.after > job.window_start else None
    cursor = planning.PagingCursor(window=window)
    plan.in_flight[api] = cursor
    return cursor


async def save(
    session: AsyncSession,
    run: BackfillRun,
    counted: Mapping[str, int] | None = None,
    **values: Any,
) -> None:
    """The plan as it stands, the job's counters moved on by ``counted``, other ``values``, the
    progress and the seller's quota, in ``session``'s unit of work; ``BackfillCancelled`` if
    the job no longer runs."""
    job = run.job
    values["checkpoint"] = run.plan.model_dump(mode="json")
    for name, amount in (counted or {}).items():
        values[name] = getattr(BackfillJob, name) + amount
    values.update(await _outlook(session, run))
    saved = await repository.update_running_job(session, run.tenant_id, job.id, **values)
    if saved is None:
        raise BackfillCancelled(str(job.id))
    run.job = saved
    run.connection = await update_connection(
        session, run.connection, quota_state=quotas.snapshot(run.client)
    )


async def _outlook(session: AsyncSession, run: BackfillRun) -> dict[str, Any]:
    """Progress, and when the job will be done from what is left and the seller's quota."""
    plan = run.plan
    if not plan.coverage_done:
        return {"progress": planning.progress(plan, orders_left=None), "estimated_done_at": None}
    tops = [cursor.window.before for cursor in plan.in_flight.values()]
    top = max(tops, default=plan.next_before)
    left = 0 if top is None else await _orders_left(session, run, top)
    seconds = planning.seconds_to_deliver(
        planning.pages_for(left), quotas.supplies(run.client, active_apis(run))
    )
    done_at = None
    if seconds is not None:
        done_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)
    return {"progress": planning.progress(plan, orders_left=left), "estimated_done_at": done_at}


async def _orders_left(session: AsyncSession, run: BackfillRun, top: dt.datetime) -> int:
    """Orders below ``top`` that only a report told of: counted at most every
    ``RECOUNT_SECONDS``, else the last count less the pages enriched since."""
    known = run.left_to_enrich
    if known is not None and monotonic() - known.counted_at < RECOUNT_SECONDS:
        return known.orders
    job = run.job
    orders = await repository.count_to_enrich(
        session, run.tenant_id, job.marketplace, job.window_start, top
    )
    run.left_to_enrich = LeftToEnrich(orders, monotonic())
    return orders


def active_apis(run: BackfillRun) -> list[str]:
    """The list operations the enrichment uses now: v2026, and v0 while Amazon serves it."""
    apis = [api for api in ("v2026", "v0") if api not in run.plan.dropped]
    if not v0_available(dt.datetime.now(dt.UTC)):
        apis = [api for api in apis if api != "v0"]
    return apis


async def finish(session: AsyncSession, run: BackfillRun) -> None:
    """Done: the job SUCCEEDED; the connection is synced through the window's end."""
    now = dt.datetime.now(dt.UTC)
    await save(
        session,
        run,
        status=BackfillStatus.SUCCEEDED,
        phase=BackfillPhase.DONE,
        finished_at=now,
    )
    connection = run.connection
    await update_connection(
        session,
        connection,
        last_sync_at=now,
        synced_through=connection.synced_through or run.job.window_end,
        next_sync_at=connection.next_sync_at or now,
    )
    logger.info(
        "backfill %s of %s done: %d orders, %d enriched, %d quarantined",
        run.job.id,
        run.tenant_id,
        run.job.orders_stored,
        run.job.orders_enriched,
        run.job.quarantined,
    )


async def fail(
    session: AsyncSession,
    tenant_id: TenantId,
    job_id: uuid.UUID,
    error: KeyBuzzError,
    *,
    attempts: int = 1,
) -> None:
    """Record a job's final failure, and why, as problem details (after how many attempts)."""
    job = await repository.get_job(session, tenant_id, job_id)
    if job is None or job.status not in repository.ACTIVE:
        return
    logger.warning("backfill %s of %s failed: %s", job.id, tenant_id, error.code)
    problem = error.to_problem(f"/api/v1/orders/backfill/{job.id}")
    if attempts > 1:
        problem.detail = f"{problem.detail or problem.title} (gave up after {attempts} attempts)"
    await repository.update_job(
        session,
        job,
        status=BackfillStatus.FAILED,
        error_code=problem.code,
        error_message=problem.detail,
        last_error=problem.model_dump(mode="json", exclude_none=True),
        estimated_done_at=None,
        finished_at=dt.datetime.now(dt.UTC),
    )
