"""The job worker: runs queued jobs (backfill and sync steps, connection checks) with the
process's Runtime.

Run it alone (`keybuzz worker`, as many as needed on as many machines), or inside `keybuzz
serve` with KEYBUZZ_RUN_WORKER=true for a single-process setup such as the demo.

SIGTERM or SIGINT stops a worker gracefully: it takes no new job, and the running steps end at
their next page boundary with everything stored so far committed and their next step queued,
for this or another worker to take. A worker killed outright leaves its jobs "doing": another
worker gives them back to the queue once the dead one has missed three heartbeats
(``queue:retry_stalled_jobs``), and they resume from their checkpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Iterator

from procrastinate.worker import Worker

from keybuzz.jobs import (
    STOPPING_CONTEXT_KEY,
    JobGroup,
    maintenance_group,
    retry_stalled,
    stalled_worker_timeout,
)
from keybuzz.marketplaces import tasks as marketplace_tasks
from keybuzz.runtime import RUNTIME_CONTEXT_KEY, Runtime
from keybuzz.sync import tasks as sync_tasks

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.5
"""How often an idle worker looks for jobs that came due (new ones wake it at once)."""
GRACEFUL_STOP_SECONDS = 30.0
"""After a stop signal, how long running jobs have to reach a safe point before they are cut."""


def job_groups(*, heartbeat_seconds: float = 5.0) -> list[JobGroup]:
    """Every domain's jobs and the queue's upkeep, as the worker runs them and the API defers
    them."""
    return [
        sync_tasks.job_group(),
        marketplace_tasks.job_group(),
        maintenance_group(heartbeat_seconds=heartbeat_seconds),
    ]


async def run_worker(
    runtime: Runtime,
    *,
    wait: bool = True,
    install_signals: bool = True,
    stop: asyncio.Event | None = None,
) -> None:
    """Process jobs until stopped: by SIGTERM or SIGINT, by ``stop`` being set, or
    (``wait=False``) once none is due. Every way, gracefully."""
    settings = runtime.settings
    stopping = stop or asyncio.Event()
    heartbeat = settings.worker_heartbeat_seconds
    async with runtime.jobs.open_async():
        await retry_stalled(runtime.jobs, stalled_worker_timeout(heartbeat))
        worker = Worker(
            runtime.jobs,
            name="keybuzz-worker",
            concurrency=settings.worker_concurrency,
            wait=wait,
            fetch_job_polling_interval=POLL_SECONDS,
            shutdown_graceful_timeout=GRACEFUL_STOP_SECONDS,
            additional_context={RUNTIME_CONTEXT_KEY: runtime, STOPPING_CONTEXT_KEY: stopping},
            install_signal_handlers=False,
            update_heartbeat_interval=heartbeat,
            stalled_worker_timeout=stalled_worker_timeout(heartbeat),
        )
        watch = asyncio.create_task(_stop_when_set(stopping, worker))
        try:
            with _stop_on_signals(stopping) if install_signals else contextlib.nullcontext():
                await worker.run()  # type: ignore[no-untyped-call]
        finally:
            watch.cancel()


async def _stop_when_set(stopping: asyncio.Event, worker: Worker) -> None:
    await stopping.wait()
    worker.stop()  # type: ignore[no-untyped-call]


@contextlib.contextmanager
def _stop_on_signals(stopping: asyncio.Event) -> Iterator[None]:
    loop = asyncio.get_running_loop()

    def stop(signum: int) -> None:
        logger.info("%s: stopping at the jobs' next safe point", signal.Signals(signum).name)
        stopping.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop, signum)
    try:
        yield
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


@contextlib.asynccontextmanager
async def worker_in_background(runtime: Runtime) -> AsyncIterator[asyncio.Task[None]]:
    """A worker running beside the caller's work; stopped gracefully when the caller is done."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_worker(runtime, install_signals=False, stop=stop))
    try:
        yield task
    finally:
        stop.set()
        await task
