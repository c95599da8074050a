"""The durable job queue: procrastinate on our own PostgreSQL.

Each domain's ``tasks.py`` builds a ``JobGroup``: its tasks on a procrastinate ``Blueprint``,
under the domain's namespace. The worker and the API put the groups together into one app per
process (``create_job_app``); this module knows no domain. Jobs are deferred on the caller's
own connection, inside the caller's transaction, so a rolled-back request leaves no job behind
and a committed one never lacks its job.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import procrastinate
import psycopg
from procrastinate.exceptions import UniqueViolation
from procrastinate.jobs import Status
from procrastinate.retry import RetryDecision
from sqlalchemy.ext.asyncio import AsyncSession

from keybuzz.db import libpq_url, raw_connection

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class JobGroup:
    namespace: str
    blueprint: procrastinate.Blueprint

    def task_name(self, name: str) -> str:
        return task_name(self.namespace, name)


def task_name(namespace: str, name: str) -> str:
    """A task's name in the queue: ``<namespace>:<name>``."""
    return f"{namespace}:{name}"


def create_job_app(database_url: str, groups: Iterable[JobGroup] = ()) -> procrastinate.App:
    connector = procrastinate.PsycopgConnector(
        conninfo=libpq_url(database_url), kwargs={"options": "-c timezone=UTC"}
    )
    app = procrastinate.App(connector=connector)
    for group in groups:
        app.add_tasks_from(group.blueprint, namespace=group.namespace)
    return app


@dataclass(frozen=True, slots=True)
class RetrySchedule(procrastinate.BaseRetryStrategy):
    """Retry a job after each of ``waits`` (seconds) in turn, on ``retry_on`` errors only; after
    the last wait, or on any other error, the job has failed for good."""

    waits: tuple[float, ...]
    retry_on: tuple[type[BaseException], ...]

    @property
    def attempts(self) -> int:
        """Runs of a job in all, the first one included."""
        return len(self.waits) + 1

    @property
    def total_wait(self) -> dt.timedelta:
        return dt.timedelta(seconds=sum(self.waits))

    def next_wait(self, error: BaseException, attempts_done: int) -> float | None:
        """Seconds before the next run after ``attempts_done`` runs ended in ``error``, or
        ``None``: no next run."""
        if attempts_done > len(self.waits) or not isinstance(error, self.retry_on):
            return None
        return self.waits[attempts_done - 1]

    def get_retry_decision(
        self, *, exception: BaseException, job: procrastinate.jobs.Job
    ) -> RetryDecision | None:
        wait = self.next_wait(exception, job.attempts + 1)
        if wait is None:
            return None
        return RetryDecision(retry_at=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=wait))


async def defer_in_transaction(
    session: AsyncSession,
    job_app: procrastinate.App,
    task: str,
    *,
    queueing_lock: str | None = None,
    priority: int = 0,
    schedule_in: float = 0.0,
    **task_kwargs: Any,
) -> int:
    """Enqueue ``task`` (its full name) in the session's transaction, due ``schedule_in``
    seconds from now; returns the queue's job id."""
    connection = await raw_connection(session)
    deferrer = job_app.configure_task(
        task,
        queueing_lock=queueing_lock,
        priority=priority,
        schedule_at=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=max(0.0, schedule_in)),
        connection=connection,
    )
    job_id: int = await deferrer.defer_async(**task_kwargs)
    return job_id


async def bring_forward(session: AsyncSession, queueing_lock: str, at: dt.datetime) -> bool:
    """The queued job of ``queueing_lock`` due at ``at`` at the latest (it may be due later);
    whether there was one still to start."""
    connection = await raw_connection(session)
    cursor = await connection.execute(
        "UPDATE procrastinate_jobs SET scheduled_at = least(scheduled_at, %s)"
        " WHERE queueing_lock = %s AND status = 'todo'",
        (at, queueing_lock),
    )
    return cursor.rowcount > 0


# --- One job at a time per resource, whichever worker runs it ---------------------------------

LOCK_SQL = "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))"


@contextlib.asynccontextmanager
async def exclusively(database_url: str, key: str) -> AsyncIterator[bool]:
    """Hold the PostgreSQL advisory lock named ``key`` for the block; yields whether it was free
    (``False``: another job holds it; come back later). It lives on a connection of its own,
    outside any transaction: a worker that dies releases it with its connection.

    (procrastinate's own ``lock`` orders every job of a lock by priority and id, those due in an
    hour included, so a step queued for later would hold up one due now.)"""
    async with await psycopg.AsyncConnection.connect(
        libpq_url(database_url), autocommit=True
    ) as connection:
        cursor = await connection.execute(LOCK_SQL, (key,))
        row = await cursor.fetchone()
        yield bool(row and row[0])


# --- The queue's own upkeep: jobs of a worker that died are given to another ------------------

STOPPING_CONTEXT_KEY = "stopping"
MAINTENANCE = "queue"
RETRY_STALLED = "retry_stalled_jobs"


def stopping(context: procrastinate.JobContext) -> Callable[[], bool]:
    """Whether the worker running the job is stopping (SIGTERM): the job should end at its next
    safe point, everything done so far committed, and leave the rest to a later run."""
    event = context.additional_context.get(STOPPING_CONTEXT_KEY)
    if event is None:
        return lambda: False
    return event.is_set  # type: ignore[no-any-return]


def maintenance_group(*, heartbeat_seconds: float) -> JobGroup:
    """``queue:retry_stalled_jobs``, every few seconds: the jobs of a worker whose heartbeat
    stopped (killed, its machine gone) run again on a living one, from their checkpoints."""
    blueprint = procrastinate.Blueprint()
    stalled_after = stalled_worker_timeout(heartbeat_seconds)

    async def retry_stalled_jobs(context: procrastinate.JobContext, timestamp: int) -> None:
        await retry_stalled(context.app, stalled_after)

    task = blueprint.task(
        name=RETRY_STALLED, pass_context=True, queueing_lock=f"{MAINTENANCE}:{RETRY_STALLED}"
    )(retry_stalled_jobs)
    every = max(1, round(heartbeat_seconds))
    blueprint.periodic(cron=f"* * * * * */{every}", periodic_id=RETRY_STALLED)(task)
    return JobGroup(MAINTENANCE, blueprint)


def stalled_worker_timeout(heartbeat_seconds: float) -> float:
    """A worker is taken for dead after three heartbeats missed."""
    return 3 * heartbeat_seconds


async def retry_stalled(app: procrastinate.App, stalled_after: float) -> int:
    """Queue again every job a dead worker held; how many.

    A job whose queueing lock already has a job waiting is not: the worker died after the job's
    last transaction had queued its successor (a step's next step), before the queue heard the
    job was over. Queueing it again would put two jobs on the lock, which the queue refuses; the
    waiting job carries the work on, so the dead one is closed as failed."""
    stalled = list(await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=stalled_after))
    retried = 0
    for job in stalled:
        try:
            await app.job_manager.retry_job(job)
        except UniqueViolation as taken:
            if taken.queueing_lock is None:
                raise
            logger.warning(
                "job %s[%s] of a dead worker is closed: %s has a job queued already",
                job.task_name,
                job.id,
                taken.queueing_lock,
            )
            await app.job_manager.finish_job(job, status=Status.FAILED, delete_job=False)
            continue
        logger.warning("job %s[%s] of a dead worker runs again", job.task_name, job.id)
        retried += 1
    return retried
