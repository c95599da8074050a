"""`keybuzz backfill` and `keybuzz sync`: the sync engine from the command line.

Both queue the work for the workers, as the API does. `--wait` (always, for `sync`) follows it
to the end; when no worker is alive, this process works as one until then (Ctrl-C leaves the
rest, checkpointed, to a worker).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn
from sqlalchemy import text

from keybuzz.config import get_settings
from keybuzz.db import migrate, resolve_database_url, tenant_transaction
from keybuzz.marketplaces.repository import get_connection
from keybuzz.marketplaces.service import AMAZON, ConnectionFailure, record_failure_apart
from keybuzz.runtime import Runtime, open_runtime
from keybuzz.sync import service
from keybuzz.sync.models import BackfillStatus
from keybuzz.sync.schemas import BackfillJobRead, BackfillRequest
from keybuzz.tenants.models import TenantId
from keybuzz.tenants.service import require_tenant, validate_tenant_id
from keybuzz.worker import job_groups, worker_in_background

T = TypeVar("T")
console = Console(stderr=True)
POLL_SECONDS = 1.0
LIVE_WORKER_HEARTBEAT = dt.timedelta(seconds=30)


def backfill(
    tenant: Annotated[str, typer.Option(help="The tenant, e.g. ecomlg-001.")],
    days: Annotated[int, typer.Option(min=1, max=730, help="How many days back.")] = 90,
    purge: Annotated[
        bool, typer.Option("--purge", help="Delete the tenant's Amazon orders first.")
    ] = False,
    wait: Annotated[bool, typer.Option("--wait", help="Follow it to the end.")] = False,
) -> None:
    """Import the last N days of a tenant's Amazon orders (queued for the workers)."""
    request = BackfillRequest(days=days, purge=purge)

    async def main(runtime: Runtime, tenant_id: TenantId) -> BackfillJobRead:
        async with (
            _recording_failures(runtime),
            tenant_transaction(runtime.sessionmaker, tenant_id) as session,
        ):
            await require_tenant(session, tenant_id)
            store = runtime.secrets.store(session)
            job, created = await service.request_backfill(
                session, runtime.amazon, store, runtime.jobs, tenant_id, request
            )
        verb = "queued" if created else "already running"
        console.print(f"Backfill {job.id} of {tenant_id} ({job.days} days): {verb}.")
        if not wait:
            return job
        async with _working_if_nobody_is(runtime):
            return await _follow(runtime, tenant_id, job)

    job = _run(tenant, main)
    if wait and job.status is not BackfillStatus.SUCCEEDED:
        reason = f": {job.error_message}" if job.error_message else ""
        console.print(f"Backfill {job.id} ended {job.status.value}{reason}")
        raise typer.Exit(1)


def sync(tenant: Annotated[str, typer.Option(help="The tenant, e.g. ecomlg-001.")]) -> None:
    """Bring a tenant's Amazon orders up to date now (its incremental sync, run at once)."""

    async def main(runtime: Runtime, tenant_id: TenantId) -> dt.datetime | None:
        started = dt.datetime.now(dt.UTC)
        async with (
            _recording_failures(runtime),
            tenant_transaction(runtime.sessionmaker, tenant_id) as session,
        ):
            await require_tenant(session, tenant_id)
            connection = await get_connection(session, tenant_id, AMAZON)
            if connection is None or connection.synced_through is None:
                console.print(
                    f"{tenant_id} has no Amazon connection to sync: connect it, then backfill."
                )
                raise typer.Exit(2)
            await service.defer_sync(session, runtime.jobs, tenant_id)
        async with _working_if_nobody_is(runtime):
            while True:
                async with tenant_transaction(runtime.sessionmaker, tenant_id) as session:
                    connection = await get_connection(session, tenant_id, AMAZON)
                assert connection is not None
                if (
                    connection.last_sync_at is not None
                    and connection.last_sync_at >= started
                    and connection.sync_position is None
                ):
                    return connection.synced_through
                await asyncio.sleep(POLL_SECONDS)

    synced = _run(tenant, main)
    if synced is not None:
        console.print(
            f"{tenant}: every change Amazon made before {synced:%Y-%m-%d %H:%M:%S} UTC is stored."
        )


def _run(tenant: str, main: Callable[[Runtime, TenantId], Awaitable[T]]) -> T:
    tenant_id = validate_tenant_id(tenant)
    settings = get_settings()
    url = resolve_database_url(settings)
    migrate(url)

    async def run() -> T:
        groups = job_groups(heartbeat_seconds=settings.worker_heartbeat_seconds)
        async with open_runtime(settings, database_url=url, jobs=groups) as runtime:
            return await main(runtime, tenant_id)

    return asyncio.run(run())


@contextlib.asynccontextmanager
async def _recording_failures(runtime: Runtime) -> AsyncIterator[None]:
    """A dead Amazon connection met here is recorded on it, as a request would."""
    try:
        yield
    except ConnectionFailure as failure:
        await record_failure_apart(runtime.sessionmaker, failure)
        raise


@contextlib.asynccontextmanager
async def _working_if_nobody_is(runtime: Runtime) -> AsyncIterator[None]:
    """This process runs jobs meanwhile, unless a worker is alive to do it."""
    async with runtime.sessionmaker() as session:
        alive = await session.scalar(
            text("SELECT count(*) FROM procrastinate_workers WHERE last_heartbeat > :since"),
            {"since": dt.datetime.now(dt.UTC) - LIVE_WORKER_HEARTBEAT},
        )
    if alive:
        yield
        return
    console.print("No worker is running: this process works as one until it is done.")
    async with worker_in_background(runtime):
        yield


async def _follow(runtime: Runtime, tenant_id: TenantId, job: BackfillJobRead) -> BackfillJobRead:
    """A progress bar (phase, counts, ETA) until the backfill ends; the job as it ended."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[counts]}"),
    )
    with Progress(*columns, console=console) as bar:
        task = bar.add_task("", total=1.0, counts="")
        while True:
            async with tenant_transaction(runtime.sessionmaker, tenant_id) as session:
                job = await service.get_backfill(session, tenant_id, job.id)
            eta = f", about {_duration(job.eta_seconds)} left" if job.eta_seconds else ""
            bar.update(
                task,
                completed=job.progress,
                description=f"{job.status.value} {job.phase.value}",
                counts=f"{job.orders_stored} orders, {job.items_stored} items, "
                f"{job.orders_enriched} enriched, {job.quarantined} quarantined{eta}",
            )
            if job.status not in (BackfillStatus.QUEUED, BackfillStatus.RUNNING):
                return job
            await asyncio.sleep(POLL_SECONDS)


def _duration(seconds: int) -> str:
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {seconds:02d} s"
