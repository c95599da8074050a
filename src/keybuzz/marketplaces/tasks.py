"""Jobs of the marketplaces domain: the periodic check of every connection."""

from __future__ import annotations

import procrastinate

from keybuzz.jobs import JobGroup
from keybuzz.marketplaces.checks import check_all
from keybuzz.runtime import runtime_of

NAMESPACE = "marketplaces"
CHECK_CONNECTIONS = "check_connections"
CHECK_SCHEDULE = "17 * * * *"


def job_group() -> JobGroup:
    blueprint = procrastinate.Blueprint()
    task = blueprint.task(
        name=CHECK_CONNECTIONS,
        pass_context=True,
        queueing_lock=f"{NAMESPACE}:{CHECK_CONNECTIONS}",
    )(check_connections)
    blueprint.periodic(cron=CHECK_SCHEDULE, periodic_id=CHECK_CONNECTIONS)(task)
    return JobGroup(NAMESPACE, blueprint)


async def check_connections(context: procrastinate.JobContext, timestamp: int) -> None:
    """Hourly: verify every connection, so a revoked one is flagged before anyone needs it."""
    await check_all(runtime_of(context))
