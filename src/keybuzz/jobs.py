"""The durable job queue: procrastinate on our own PostgreSQL.

Each domain's ``tasks.py`` holds its task functions and a ``register(app)`` that declares them on
an app; ``create_job_app`` builds one app per Runtime and registers them all. Jobs are deferred
on the caller's own connection, inside the caller's transaction, so a rolled-back request leaves
no job behind and a committed one never lacks its job.
"""

from __future__ import annotations

from typing import Any

import procrastinate
from sqlalchemy.ext.asyncio import AsyncSession

from keybuzz.db import libpq_url, raw_connection


def create_job_app(database_url: str) -> procrastinate.App:
    from keybuzz.marketplaces import tasks as marketplace_tasks
    from keybuzz.sync import tasks as sync_tasks

    connector = procrastinate.PsycopgConnector(
        conninfo=libpq_url(database_url), kwargs={"options": "-c timezone=UTC"}
    )
    app = procrastinate.App(connector=connector)
    sync_tasks.register(app)
    marketplace_tasks.register(app)
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
