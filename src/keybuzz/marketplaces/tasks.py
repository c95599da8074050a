"""Jobs of the marketplaces domain: the periodic check of every connection, the purge of
expired consent states."""

from __future__ import annotations

import logging

import procrastinate

from keybuzz.db import transaction
from keybuzz.jobs import JobGroup
from keybuzz.marketplaces.checks import check_all
from keybuzz.marketplaces.oauth import purge_expired_states
from keybuzz.runtime import runtime_of

logger = logging.getLogger(__name__)

NAMESPACE = "marketplaces"
CHECK_CONNECTIONS = "check_connections"
CHECK_SCHEDULE = "17 * * * *"
PURGE_STATES = "purge_oauth_states"
PURGE_SCHEDULE = "*/10 * * * *"


def job_group() -> JobGroup:
    blueprint = procrastinate.Blueprint()
    task = blueprint.task(
        name=CHECK_CONNECTIONS,
        pass_context=True,
        queueing_lock=f"{NAMESPACE}:{CHECK_CONNECTIONS}",
    )(check_connections)
    blueprint.periodic(cron=CHECK_SCHEDULE, periodic_id=CHECK_CONNECTIONS)(task)
    purge = blueprint.task(
        name=PURGE_STATES,
        pass_context=True,
        queueing_lock=f"{NAMESPACE}:{PURGE_STATES}",
    )(purge_oauth_states)
    blueprint.periodic(cron=PURGE_SCHEDULE, periodic_id=PURGE_STATES)(purge)
    return JobGroup(NAMESPACE, blueprint)


async def check_connections(context: procrastinate.JobContext, timestamp: int) -> None:
    """Hourly: verify every connection, so a revoked one is flagged before anyone needs it."""
    await check_all(runtime_of(context))


async def purge_oauth_states(context: procrastinate.JobContext, timestamp: int) -> None:
    """Every 10 minutes: the consent states expired for an hour or more are deleted."""
    async with transaction(runtime_of(context).privileged_sessionmaker) as session:
        deleted = await purge_expired_states(session)
    if deleted:
        logger.info("deleted %d expired consent state(s)", deleted)
