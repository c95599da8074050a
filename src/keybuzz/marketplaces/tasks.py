"""Jobs of the marketplaces domain: the periodic check of every connection."""

from __future__ import annotations

import procrastinate

CHECK_CONNECTIONS = "marketplaces:check_connections"


def register(app: procrastinate.App) -> None:
    task = app.task(name=CHECK_CONNECTIONS, pass_context=True, queueing_lock=CHECK_CONNECTIONS)
    app.periodic(cron="17 * * * *", periodic_id="check_connections")(task(check_connections))


async def check_connections(context: procrastinate.JobContext, timestamp: int) -> None:
    """Hourly: verify every connection, so a revoked one is flagged before anyone needs it."""
    from keybuzz.marketplaces.checks import check_all

    await check_all(context.additional_context["runtime"])
