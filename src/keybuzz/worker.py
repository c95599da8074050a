"""The job worker: runs queued jobs (backfills, connection checks) with the process's Runtime.

Run it alone (`keybuzz worker`, as many as needed on as many machines), or inside `keybuzz
serve` with KEYBUZZ_RUN_WORKER=true for a single-process setup such as the demo.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from keybuzz.jobs import JobGroup
from keybuzz.marketplaces import tasks as marketplace_tasks
from keybuzz.runtime import RUNTIME_CONTEXT_KEY, Runtime
from keybuzz.sync import tasks as sync_tasks

WORKER_CONCURRENCY = 4


def job_groups() -> list[JobGroup]:
    """Every domain's jobs, as the worker runs them and the API defers them."""
    return [sync_tasks.job_group(), marketplace_tasks.job_group()]


async def run_worker(runtime: Runtime, *, wait: bool = True, install_signals: bool = True) -> None:
    """Process jobs until stopped (``wait=False``: until the queue is empty)."""
    async with runtime.jobs.open_async():
        await runtime.jobs.run_worker_async(
            additional_context={RUNTIME_CONTEXT_KEY: runtime},
            concurrency=WORKER_CONCURRENCY,
            wait=wait,
            install_signal_handlers=install_signals,
            name="keybuzz-worker",
        )


@contextlib.asynccontextmanager
async def worker_in_background(runtime: Runtime) -> AsyncIterator[None]:
    task = asyncio.create_task(run_worker(runtime, install_signals=False))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
