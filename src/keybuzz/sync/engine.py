"""The loops of the sync engine's job steps: each step does what Amazon's quota allows now,
commits every page (or report chunk) with its checkpoint, and ends — handing back when to come
again — rather than hold a worker slot asleep on a bucket.

A step ends when the next call is more than ``WAIT_IN_STEP`` seconds away, when the worker is
stopping (SIGTERM: at the next page boundary, everything stored so far committed), or when the
job was cancelled. Every unit of work is a transaction of its own; the functions it calls
(``sync.backfill``, ``sync.incremental``) only flush.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from keybuzz.amazon.client import SpApiClient
from keybuzz.amazon.concurrency import gather_or_cancel
from keybuzz.amazon.errors import AmazonApiUnavailable
from keybuzz.amazon.operations import CREATE_REPORT, GET_ORDERS, SEARCH_ORDERS
from keybuzz.amazon.reports import ORDERS_BY_LAST_UPDATE, ORDERS_BY_ORDER_DATE, OrderReportQuery
from keybuzz.db import tenant_transaction
from keybuzz.orders.records import OrderRecord, RejectedOrder
from keybuzz.runtime import Runtime
from keybuzz.sync import backfill, incremental, quotas
from keybuzz.sync.backfill import BackfillCancelled, BackfillRun
from keybuzz.sync.incremental import SyncRun
from keybuzz.sync.models import BackfillPhase
from keybuzz.sync.plan import ReportSlice
from keybuzz.tenants.models import TenantId

logger = logging.getLogger(__name__)

WAIT_IN_STEP = 2.0
"""A call due sooner than this is waited for within the step; a later one ends it."""
NAP = 0.5
"""How long an operation whose next call is far off naps before looking again, while another
operation keeps the step going."""
REPORT_CHUNK = 1000
"""Orders of a report stored (and checkpointed) together."""
REPORT_CHUNKS_AHEAD = 2
"""Chunks of a report parsed and waiting to be stored, at most: the worker parses the next
while PostgreSQL writes one, and memory stays bounded."""
REPORT_POLL_SHARE = 0.05
"""A report Amazon has not finished is checked again after this share of the time it has been
generating: it is read at most 5 % later than it could be (Amazon does not say how long a report
takes: seconds for a small one, minutes for a big one)."""
REPORT_POLL_MIN, REPORT_POLL_MAX = 0.5, 15.0
LIST_OPERATIONS = {"v2026": SEARCH_ORDERS, "v0": GET_ORDERS}

Stopping = Callable[[], bool]
Continuation = Callable[[AsyncSession, float], Awaitable[None]]
"""Defers the job's next step ``seconds`` from now, in the session's transaction."""


@dataclass(frozen=True)
class Step:
    """What a job step works with: its tenant, the process's resources, whether the worker is
    stopping, and how to defer what comes next (the task layer knows the queue)."""

    tenant: TenantId
    runtime: Runtime
    stopping: Stopping
    continue_in: Continuation
    """The job's next step, ``seconds`` from now."""
    sync_from: Callable[[AsyncSession, TenantId, dt.datetime], Awaitable[None]]
    """The connection's incremental sync, due at the given time."""

    def transaction(self) -> contextlib.AbstractAsyncContextManager[AsyncSession]:
        """A unit of work of the step, bound to its tenant (row-level security)."""
        return tenant_transaction(self.runtime.sessionmaker, self.tenant)


async def backfill_step(step: Step, tenant_id: TenantId, job_id: uuid.UUID) -> None:
    """One step of a backfill; its last unit of work defers the next step, or finishes it."""
    runtime = step.runtime
    async with step.transaction() as session:
        store = runtime.secrets.store(session)
        run = await backfill.open_step(session, runtime.amazon, store, tenant_id, job_id)
    if run is None:
        return
    try:
        again_in = await _advance(step, run)
        async with step.transaction() as session:
            if again_in is None:
                await backfill.finish(session, run)
                await step.sync_from(session, tenant_id, dt.datetime.now(dt.UTC))
            else:
                await backfill.save(session, run)
                await step.continue_in(session, again_in)
    except BackfillCancelled:
        logger.info("backfill %s of %s cancelled: stopped at a page boundary", job_id, tenant_id)


async def _advance(step: Step, run: BackfillRun) -> float | None:
    """Work until the quota, a shutdown or the end says stop; seconds until the next step
    (``None``: the backfill is done)."""
    if run.job.purge and not run.plan.purged:
        async with step.transaction() as session:
            await backfill.purge(session, run)
    if not run.plan.coverage_done:
        again_in = await _cover(step, run)
        if again_in is not None:
            return again_in
    # Not "right after the coverage": a step may have died between its last chunk and this.
    if run.job.phase is BackfillPhase.COVERAGE:
        async with step.transaction() as session:
            await backfill.start_enrichment(session, run)
    return await _enrich(step, run)


# --- Order reports (a backfill's coverage, a sync's catch-up) -----------------------------------

Save = Callable[[AsyncSession], Awaitable[None]]
Checkpoint = Callable[[], Awaitable[None]]
"""Called by a ``StoreChunk`` once the chunk's rows are written, before it saves where the
reading stands: from then on to the commit, the reports' transactions take turns."""
StoreChunk = Callable[
    [AsyncSession, list[OrderRecord], list[RejectedOrder], Checkpoint], Awaitable[None]
]


@dataclass(frozen=True)
class ReportJob:
    """Reports of one kind over consecutive slices, and what to do with what they hold."""

    client: SpApiClient
    report_type: str
    marketplace_ids: list[str]
    slices: list[ReportSlice]
    save: Save
    """Saves where the reading stands (the slices), in the session's unit of work."""
    store_chunk: StoreChunk
    """Stores a chunk of orders and saves where the reading stands, in one unit of work."""
    saving: asyncio.Lock
    """The finished reports are read, and their chunks written, at the same time; their saves
    and commits take turns, and a slice's progress changes only within one, so a save never
    records rows another transaction has not committed."""
    dated_by: Callable[[OrderRecord], dt.datetime] | None = None
    """The order's date the reports' ranges select on, to take an order of the second two
    slices share once; ``None``: every order a report holds is taken."""


async def read_reports(step: Step, reports: ReportJob) -> float | None:
    """Request the slices' reports, read those Amazon has finished; ``None`` once all are
    read, else the seconds until it is worth looking again. A look due within
    ``WAIT_IN_STEP`` is waited for in the step."""
    while True:
        again_in = await _read_finished_reports(step, reports)
        if again_in is None or again_in > WAIT_IN_STEP or step.stopping():
            return again_in
        await asyncio.sleep(again_in)


async def _read_finished_reports(step: Step, reports: ReportJob) -> float | None:
    """Every requested report followed at once, each read as soon as Amazon has finished it:
    one's orders are parsed while another's are stored. ``None`` once all are read, else the
    seconds until it is worth looking again."""
    await _request_reports(step, reports)
    requested = [r for r in reports.slices if not r.done and r.report_id is not None]
    waits = await gather_or_cancel([_follow_report(step, reports, r) for r in requested])
    pending = [wait for wait in waits if wait is not None]
    if any(report.report_id is None for report in reports.slices):
        pending.append(reports.client.next_token_in(CREATE_REPORT))
    return min(pending, default=None)


async def _follow_report(step: Step, reports: ReportJob, report: ReportSlice) -> float | None:
    """Look at one report until Amazon has finished it, then read it; ``None`` once read, else
    the seconds until the next look when that is more than ``WAIT_IN_STEP`` away (or 0 when
    the worker stops)."""
    assert report.report_id is not None
    while True:
        state = await reports.client.reports.report_state(report.report_id)
        if state.finished:
            read = await _read_report(step, reports, report, state.report_document_id)
            return None if read else 0.0
        pause = _report_poll([report], dt.datetime.now(dt.UTC))
        if pause > WAIT_IN_STEP or step.stopping():
            return pause
        await asyncio.sleep(pause)


def _report_poll(waiting: list[ReportSlice], now: dt.datetime) -> float:
    """Seconds until the next look at reports Amazon is generating: a share of how long the
    oldest of them has been."""
    requested = [report.requested_at for report in waiting if report.requested_at is not None]
    generating = (now - min(requested)).total_seconds() if requested else 0.0
    return min(REPORT_POLL_MAX, max(REPORT_POLL_MIN, REPORT_POLL_SHARE * generating))


async def _request_reports(step: Step, reports: ReportJob) -> None:
    """As many reports as ``createReport``'s burst allows now, all at once."""
    unrequested = [report for report in reports.slices if report.report_id is None]
    affordable = unrequested[: int(quotas.tokens_now(reports.client, CREATE_REPORT))]
    if not affordable:
        return
    ids = await reports.client.reports.request_reports(
        [
            OrderReportQuery(reports.marketplace_ids, report.start, report.end, reports.report_type)
            for report in affordable
        ]
    )
    requested_at = dt.datetime.now(dt.UTC)
    async with reports.saving, step.transaction() as session:
        for report, report_id in zip(affordable, ids, strict=True):
            report.report_id, report.requested_at = report_id, requested_at
        await reports.save(session)


async def _read_report(
    step: Step, reports: ReportJob, report: ReportSlice, document_id: str | None
) -> bool:
    """Store a finished report's orders chunk by chunk, each with the rows read; ``False``
    when the worker stops before the end (the next step resumes after the last chunk).
    ``document_id`` ``None``: Amazon found no order in the slice.

    The report is parsed ahead of what is stored (``REPORT_CHUNKS_AHEAD`` chunks at most), so
    that the worker parses while PostgreSQL writes the chunk before."""
    if document_id is None:
        await _store_chunk(step, reports, report, _ReportChunk([], [], report.rows_done, True))
        return True
    parsed: asyncio.Queue[_ReportChunk | BaseException] = asyncio.Queue(REPORT_CHUNKS_AHEAD)
    parser = asyncio.create_task(_parse_report(reports, report, document_id, parsed))
    try:
        while True:
            chunk = await parsed.get()
            if isinstance(chunk, BaseException):
                raise chunk
            await _store_chunk(step, reports, report, chunk)
            if chunk.last:
                return True
            if step.stopping():
                return False
    finally:
        parser.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await parser


@dataclass(frozen=True, slots=True)
class _ReportChunk:
    records: list[OrderRecord]
    rejected: list[RejectedOrder]
    rows_done: int
    """The report's data rows handled once this chunk is stored."""
    last: bool


async def _parse_report(
    reports: ReportJob,
    report: ReportSlice,
    document_id: str,
    parsed: asyncio.Queue[_ReportChunk | BaseException],
) -> None:
    """Put the report's chunks (the last one marked, even if empty) into ``parsed``, or the
    error that ended the reading."""
    try:
        async for chunk in _report_chunks(reports, report, document_id):
            await parsed.put(chunk)
    except asyncio.CancelledError:
        raise
    except Exception as error:  # handed to the reader, which raises it
        await parsed.put(error)


async def _report_chunks(
    reports: ReportJob, report: ReportSlice, document_id: str
) -> AsyncIterator[_ReportChunk]:
    records: list[OrderRecord] = []
    rejected: list[RejectedOrder] = []
    next_slice_holds = _next_slice_holds(reports, report)
    rows = report.rows_done
    stream = reports.client.reports.report_records(document_id, skip_rows=report.rows_done)
    async with contextlib.aclosing(stream) as items:
        async for item in items:
            rows = item.rows_done
            if isinstance(item.order, OrderRecord):
                if next_slice_holds(item.order):
                    continue  # it is taken from the next slice's report
                records.append(item.order)
            else:
                rejected.append(item.order)
            if len(records) + len(rejected) >= REPORT_CHUNK:
                yield _ReportChunk(records, rejected, rows, last=False)
                records, rejected = [], []
    yield _ReportChunk(records, rejected, rows, last=True)


def _next_slice_holds(reports: ReportJob, report: ReportSlice) -> Callable[[OrderRecord], bool]:
    """Whether the next slice's report holds an order of this one's too: Amazon's report ranges
    go by the whole second and take both their ends, so an order of the second where one slice
    ends and the next begins is in both reports (never only in this one)."""
    dated_by = reports.dated_by
    if dated_by is None or report is reports.slices[-1]:
        return lambda order: False
    next_start = report.end.replace(microsecond=0)
    return lambda order: dated_by(order) >= next_start


async def _store_chunk(
    step: Step, reports: ReportJob, report: ReportSlice, chunk: _ReportChunk
) -> None:
    """The chunk's rows and its slice's progress, in one transaction. Chunks of different
    reports are written at the same time (PostgreSQL then works on every core); the
    checkpoint and the commit hold ``reports.saving``."""
    before = report.rows_done, report.done
    holding = False

    async def checkpoint() -> None:
        nonlocal holding
        await reports.saving.acquire()
        holding = True
        report.rows_done, report.done = chunk.rows_done, chunk.last

    try:
        async with step.transaction() as session:
            await reports.store_chunk(session, chunk.records, chunk.rejected, checkpoint)
            if not holding:
                raise RuntimeError("a report's chunk was stored without its checkpoint")
    except BaseException:
        if holding:
            report.rows_done, report.done = before
        raise
    finally:
        if holding:
            reports.saving.release()


# --- Backfill coverage ---------------------------------------------------------------------------


async def _cover(step: Step, run: BackfillRun) -> float | None:
    plan = run.plan
    if not plan.slices:
        async with run.saving, step.transaction() as session:
            await backfill.plan_coverage(session, run)

    async def save(session: AsyncSession) -> None:
        await backfill.save(session, run)

    async def store_chunk(
        session: AsyncSession,
        records: list[OrderRecord],
        rejected: list[RejectedOrder],
        checkpoint: Checkpoint,
    ) -> None:
        await backfill.store_records(
            session, run, records, rejected, enriching=False, before_save=checkpoint
        )

    reports = ReportJob(
        run.client,
        ORDERS_BY_ORDER_DATE,
        run.connection.marketplace_ids,
        plan.slices,
        save,
        store_chunk,
        run.saving,
        dated_by=_order_date,
    )
    return await read_reports(step, reports)


def _order_date(order: OrderRecord) -> dt.datetime:
    return order.order_date


# --- Enrichment: the order APIs, newest first ----------------------------------------------------


async def _enrich(step: Step, run: BackfillRun) -> float | None:
    """Every list operation pages windows at its own pace; ``None`` when no window is left,
    else the seconds until the soonest operation can go on."""
    apis = backfill.active_apis(run)
    working = set(apis)
    waits = await gather_or_cancel([_enrich_with(step, run, api, working) for api in apis])
    pending = [wait for wait in waits if wait is not None]
    if pending:
        return min(pending)
    if run.plan.windows_left:  # an operation was dropped with a window half done
        return 0.0
    return None


async def _enrich_with(step: Step, run: BackfillRun, api: str, working: set[str]) -> float | None:
    """Pages of one list operation until none is left (``None``) or its next call is far off
    (the seconds until then). While another operation still works in this step, a far call
    is waited for here, a nap at a time, rather than left until the next step.

    A new window is taken only once the operation's token is there: the next window goes to
    whichever operation can ask for it first. Taken earlier, the last windows would wait on
    the slower bucket (searchOrders: one call per 180 s at Amazon's rate, three times
    getOrders' interval) while the faster one, its token in hand, had nothing left to do."""
    operation = LIST_OPERATIONS[api]
    try:
        while True:
            if step.stopping():
                return 0.0
            cursor = run.plan.in_flight.get(api)
            if cursor is None and not backfill.window_left(run):
                return None
            wait = run.client.next_token_in(operation)
            if wait > (0.0 if cursor is None else WAIT_IN_STEP):
                far = wait > WAIT_IN_STEP
                if far and not working - {api}:
                    return wait
                if far:  # another operation may end the step rather than wait for this one
                    working.discard(api)
                await asyncio.sleep(min(wait, NAP))
                working.add(api)
                continue
            if cursor is None:
                async with run.saving, step.transaction() as session:
                    cursor = await backfill.take_window(session, run, api)
                if cursor is None:
                    return None
            try:
                page = await run.client.enrichment_page(
                    api,  # type: ignore[arg-type]
                    cursor.window.amazon_window(),
                    marketplace_ids=run.connection.marketplace_ids,
                    position=cursor.position,
                )
            except AmazonApiUnavailable as refused:
                logger.warning("%s: the enrichment goes on without %s", refused, api)
                async with run.saving:
                    run.plan.dropped.append(api)
                return None
            async with run.saving, step.transaction() as session:
                if page.position is None:
                    run.plan.in_flight.pop(api, None)
                else:
                    cursor.position = page.position.model_dump(mode="json")
                await backfill.store_records(
                    session, run, page.records, page.rejected, enriching=True
                )
    finally:
        working.discard(api)


# --- Incremental sync -----------------------------------------------------------------------------


async def sync_step(
    step: Step, tenant_id: TenantId, interval: dt.timedelta, catch_up_after: dt.timedelta
) -> None:
    """One step of a connection's incremental sync; its last unit of work defers the next."""
    runtime = step.runtime
    async with step.transaction() as session:
        store = runtime.secrets.store(session)
        run = await incremental.open_sync(
            session, runtime.amazon, store, tenant_id, catch_up_after=catch_up_after
        )
    if run is None:
        return
    again_in = await _catch_up(step, run)
    if again_in is None:
        again_in = await _page_changes(step, run)
    async with step.transaction() as session:
        if again_in is None:
            next_at = await incremental.finish(session, run, interval)
            await step.continue_in(session, (next_at - dt.datetime.now(dt.UTC)).total_seconds())
        else:
            await incremental.save(session, run)
            await step.continue_in(session, again_in)


async def _catch_up(step: Step, run: SyncRun) -> float | None:
    if not run.position.catch_up:
        return None

    async def save(session: AsyncSession) -> None:
        await incremental.save(session, run)

    async def store_chunk(
        session: AsyncSession,
        records: list[OrderRecord],
        rejected: list[RejectedOrder],
        checkpoint: Checkpoint,
    ) -> None:
        # Before any write: the same order may have changed in two slices' reports, and two
        # transactions updating it at once could wait on each other.
        await checkpoint()
        await incremental.store_changes(session, run, records, rejected)

    reports = ReportJob(
        run.client,
        ORDERS_BY_LAST_UPDATE,
        run.connection.marketplace_ids,
        run.position.catch_up,
        save,
        store_chunk,
        asyncio.Lock(),
    )
    again_in = await read_reports(step, reports)
    if again_in is not None:
        return again_in
    async with step.transaction() as session:
        await incremental.end_catch_up(session, run)
    return None


async def _page_changes(step: Step, run: SyncRun) -> float | None:
    """Every ``searchOrders`` page of changes since the watermark; ``None`` once caught up."""
    while True:
        if step.stopping():
            return 0.0
        wait = run.client.next_token_in(SEARCH_ORDERS)
        if wait > WAIT_IN_STEP:
            return wait
        page = await run.client.enrichment_page(
            "v2026",
            run.window(),
            marketplace_ids=run.connection.marketplace_ids,
            position=run.position.page,
        )
        async with step.transaction() as session:
            await incremental.store_page(session, run, page)
        if page.position is None:
            return None
