"""The durable job queue: procrastinate on our own PostgreSQL.

Each domain's ``tasks.py`` builds a ``JobGroup``: its tasks on a procrastinate ``Blueprint``,
under the domain's namespace. The worker and the API put the groups together into one app per
process (``create_job_app``); this module knows no domain. Jobs are deferred on the caller's
own connection, inside the caller's transaction, so a rolled-back request leaves no job behind
and a committed one never lacks its job.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import procrastinate
from procrastinate.retry import RetryDecision
from sqlalchemy.ext.asyncio import AsyncSession

from keybuzz.db import libpq_url, raw_connection


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
    lock: str | None = None,
    queueing_lock: str | None = None,
    **task_kwargs: Any,
) -> int:
    """Enqueue ``task`` (its full name) in the session's transaction; returns the queue's job id."""
    connection = await raw_connection(session)
    deferrer = job_app.configure_task(
        task, lock=lock, queueing_lock=queueing_lock, connection=connection
    )
    job_id: int = await deferrer.defer_async(**task_kwargs)
    return job_id
