"""The durable job queue: procrastinate on our own PostgreSQL.

Each domain declares its tasks on a ``Blueprint`` in its ``tasks.py``; ``create_job_app`` gathers
them. Jobs are deferred on the caller's own connection, inside the caller's transaction, so a
rolled-back request leaves no job behind and a committed one never lacks its job.
"""

from __future__ import annotations

from typing import Any

import procrastinate
from sqlalchemy.ext.asyncio import AsyncSession

from keybuzz.db import libpq_url, raw_connection


def create_job_app(database_url: str) -> procrastinate.App:
    from keybuzz.marketplaces.tasks import blueprint as marketplace_tasks
    from keybuzz.sync.tasks import blueprint as sync_tasks

    connector = procrastinate.PsycopgConnector(
        conninfo=libpq_url(database_url), kwargs={"options": "-c timezone=UTC"}
    )
    app = procrastinate.App(connector=connector)
    app.add_tasks_from(sync_tasks, namespace="sync")
    app.add_tasks_from(marketplace_tasks, namespace="marketplaces")
    return app


async def defer_in_transaction(
    session: AsyncSession,
    job_app: procrastinate.App,
    task_name: str,
    *,
    lock: str | None = None,
    queueing_lock: str | None = None,
    **task_kwargs: Any,
) -> int:
    """Enqueue ``task_name`` in the session's transaction; returns the queue's job id."""
    connection = await raw_connection(session)
    deferrer = job_app.configure_task(
        task_name, lock=lock, queueing_lock=queueing_lock, connection=connection
    )
    job_id: int = await deferrer.defer_async(**task_kwargs)
    return job_id
