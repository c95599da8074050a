"""The sync engine when things go wrong, end to end: `keybuzz worker` processes killed outright
at random points of a backfill, Amazon failing one call in ten, three workers sharing ten
tenants, a worker stopped by SIGTERM. Each run ends with exactly Amazon's orders, each once.

The workers are real processes, configured only through ``KEYBUZZ_*`` variables: the test's
database, the data folder of the test's runtime (the local secret store's key), the simulator.
Waits poll the database while the workers live; their time limits are hang guards, never a
speed check.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from keybuzz.config import Settings
from keybuzz.jobs import MAINTENANCE, RETRY_STALLED, create_job_app, retry_stalled, task_name
from keybuzz.runtime import open_runtime
from keybuzz.simulator import FaultSettings, SimulatorServer
from keybuzz.simulator.faults import FaultKind, ScriptedFault
from keybuzz.sync import service
from keybuzz.worker import job_groups
from tests.factories import TenantCredentials
from tests.fixtures.amazon import BACKFILL, Deployed, amazon_settings
from tests.fixtures.hygiene import leaks_in
from tests.fixtures.sync import (
    RATE_SCALE,
    assert_matches_amazon,
    settled_amazon,
    settled_seller,
    stored_orders,
)

HEARTBEAT = 1.0
"""KEYBUZZ_WORKER_HEARTBEAT_SECONDS of the workers: a killed one is taken for dead 3 s later."""
HANG_GUARD = 300.0
"""Seconds after which a wait is taken for a hang (a speed check it is not)."""
STOP_GUARD = 60.0
"""Seconds a worker may take to exit after SIGTERM before it is taken for hung."""
BACKFILL_STEP = task_name(service.NAMESPACE, service.BACKFILL_ORDERS)
SYNC = task_name(service.NAMESPACE, service.SYNC_ORDERS)
JOB = "01a23250-0000-7000-8000-000000000001"


@pytest.fixture
def amazon() -> Iterator[SimulatorServer]:
    yield from settled_amazon()


# --- Worker processes ---------------------------------------------------------------------------


@dataclass
class Workers:
    """`keybuzz worker` processes of the test, each logging to a file of its own; every one
    still running when the test ends is killed."""

    environment: dict[str, str]
    folder: Path
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)
    meant_to_run: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, **settings: str) -> subprocess.Popen[bytes]:
        """A new worker; ``settings`` add ``KEYBUZZ_<NAME>`` variables."""
        env = {**self.environment}
        env.update({f"KEYBUZZ_{name.upper()}": value for name, value in settings.items()})
        with self.log_of(len(self.started)).open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "keybuzz.cli", "worker"],
                env=env,
                cwd=self.folder,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a process group of its own, killed as a whole
            )
        self.started.append(process)
        self.meant_to_run.append(process)
        return process

    def log_of(self, number: int) -> Path:
        return self.folder / f"worker-{number}.log"

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        """SIGKILL, to the worker's whole process group: no handler, no last word."""
        self.meant_to_run.remove(process)
        _kill_group(process)

    async def stop(self, process: subprocess.Popen[bytes]) -> int:
        """SIGTERM; the exit code, once the worker has exited (``STOP_GUARD``: a hang)."""
        self.meant_to_run.remove(process)
        process.send_signal(signal.SIGTERM)
        try:
            return await asyncio.to_thread(process.wait, STOP_GUARD)
        except subprocess.TimeoutExpired:
            pytest.fail(f"a worker still runs {STOP_GUARD:g} s after SIGTERM:\n{self._tail()}")

    async def until(self, condition: Callable[[], Awaitable[bool]]) -> None:
        """Wait for ``condition()`` while every worker meant to run runs."""
        deadline = time.monotonic() + HANG_GUARD
        while not await condition():
            for process in self.meant_to_run:
                if process.poll() is not None:
                    pytest.fail(f"a worker exited with {process.returncode}:\n{self._tail()}")
            if time.monotonic() > deadline:
                pytest.fail(f"nothing happened in {HANG_GUARD:g} s:\n{self._tail()}")
            await asyncio.sleep(0.05)

    def _tail(self) -> str:
        logs = [self.log_of(n) for n in range(len(self.started))]
        return "\n".join(f"--- {log.name}\n{log.read_text()[-3000:]}" for log in logs[-3:])

    def close(self) -> list[str]:
        """Kill what still runs; the log lines that hold a credential."""
        for process in self.started:
            _kill_group(process)
        leaks: list[str] = []
        for number in range(len(self.started)):
            leaks += [line[:200] for line in self.log_of(number).read_text().splitlines()]
        return [line for line in leaks if leaks_in(line)]


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:  # it ended in the meantime
            pass
    process.wait()


def worker_environment(settings: Settings, database_url: str) -> dict[str, str]:
    """What a worker of the deployment is given: nothing but ``KEYBUZZ_*`` variables for the
    test's database, the runtime's data folder (its secret store key) and the simulator."""
    assert settings.spapi_endpoint is not None
    assert settings.lwa_token_url is not None
    assert settings.seller_central_url is not None
    env = {name: value for name, value in os.environ.items() if not name.startswith("KEYBUZZ_")}
    env.update(
        {
            "KEYBUZZ_DATABASE_URL": database_url,
            "KEYBUZZ_DATA_DIR": str(settings.data_dir.resolve()),
            "KEYBUZZ_SPAPI_ENDPOINT": settings.spapi_endpoint,
            "KEYBUZZ_LWA_TOKEN_URL": settings.lwa_token_url,
            "KEYBUZZ_SELLER_CENTRAL_URL": settings.seller_central_url,
            "KEYBUZZ_WORKER_HEARTBEAT_SECONDS": f"{HEARTBEAT:g}",
            "KEYBUZZ_LOG_LEVEL": "INFO",
        }
    )
    return env


@pytest.fixture
def workers(deployed: Deployed, fresh_database_url: str, tmp_path: Path) -> Iterator[Workers]:
    folder = tmp_path / "workers"
    folder.mkdir()
    started = Workers(worker_environment(deployed.runtime.settings, fresh_database_url), folder)
    try:
        yield started
    finally:
        leaks = started.close()
    assert not leaks, f"credentials in the workers' logs: {leaks[:3]}"


# --- What the database says ---------------------------------------------------------------------


async def _rows(deployed: Deployed, query: str, **params: Any) -> list[Any]:
    async with deployed.runtime.privileged_sessionmaker() as session:
        return list((await session.execute(text(query), params)).all())


@dataclass(frozen=True)
class BackfillState:
    """A backfill's row as committed, beside the orders committed."""

    status: str
    phase: str
    orders_stored: int
    orders_enriched: int
    orders_held: int
    """The tenant's orders in the database."""
    orders_detailed: int
    """Those the APIs have brought the details of."""


async def backfill_state(
    deployed: Deployed, tenant: TenantCredentials, job_id: str
) -> BackfillState:
    [row] = await _rows(
        deployed,
        "SELECT j.status::text, j.phase::text, j.orders_stored, j.orders_enriched, "
        "(SELECT count(*) FROM orders o WHERE o.tenant_id = j.tenant_id), "
        "(SELECT count(*) FROM orders o WHERE o.tenant_id = j.tenant_id "
        "AND o.enriched_at IS NOT NULL) "
        "FROM backfill_jobs j WHERE j.tenant_id = :tenant AND j.id = :id",
        tenant=tenant.id,
        id=job_id,
    )
    return BackfillState(*row)


async def steps_of(deployed: Deployed, job_id: str) -> list[tuple[int, str]]:
    """The queue's jobs (steps) of the backfill: (queue id, status), oldest first."""
    rows = await _rows(
        deployed,
        "SELECT id, status::text FROM procrastinate_jobs "
        "WHERE task_name = :task AND args->>'backfill_job_id' = :id ORDER BY id",
        task=BACKFILL_STEP,
        id=job_id,
    )
    return [(int(queue_id), status) for queue_id, status in rows]


async def queue_workers(deployed: Deployed) -> set[int]:
    """The workers the queue knows of (living ones, and dead ones not yet pruned)."""
    return {int(worker_id) for (worker_id,) in await _rows(deployed, QUEUE_WORKERS)}


QUEUE_WORKERS = "SELECT id FROM procrastinate_workers"


async def request_backfill(deployed: Deployed, tenant: TenantCredentials) -> str:
    """A backfill of every order of a settled seller: they go back 90 days from the seller's
    creation, a moment before the request; a day more keeps the oldest off the window's edge."""
    queued = await deployed.client.post(BACKFILL, json={"days": 91}, headers=tenant.headers)
    assert queued.status_code == 202, queued.text
    job_id: str = queued.json()["id"]
    return job_id


# --- 1. Killed outright, ten times ----------------------------------------------------------------

KILLS = 10
CRAWL = 20
"""Amazon's rate scale while the workers are killed: slow enough that the backfill is sure to
outlast ten kills (its enrichment alone needs minutes at this pace), so each lands inside it."""


@pytest.mark.slow
async def test_a_backfill_whose_worker_is_killed_ten_times_ends_with_exactly_amazons_orders(
    deployed: Deployed, amazon: SimulatorServer, workers: Workers
) -> None:
    seller = settled_seller(amazon, 10_000)
    tenant = await deployed.tenant()
    truth = amazon.simulator.ground_truth(seller)["orders"]
    job_id = await request_backfill(deployed, tenant)
    amazon.simulator.set_rate_scale(CRAWL)
    pause = random.Random(20261201)
    seen = await queue_workers(deployed)
    at_kills: list[BackfillState] = []

    for kill in range(KILLS):
        worker = workers.start()
        seen = await _at_work(deployed, workers, seen)
        if kill >= KILLS // 2:  # the later kills land in the import, however slow the machine
            await _moved_on(deployed, workers, tenant, job_id, at_kills[-1])
        await asyncio.sleep(pause.uniform(0.3, 2.0))  # a moment of its work, drawn (seeded)
        workers.kill(worker)
        at_kills.append(await backfill_state(deployed, tenant, job_id))
    amazon.simulator.set_rate_scale(RATE_SCALE)
    last = workers.start()
    await workers.until(lambda: deployed.backfill_over(tenant, job_id))
    assert await workers.stop(last) == 0

    job = await deployed.backfill_job(tenant, job_id)
    stored = await stored_orders(deployed.client, tenant)
    left_running = await _rows(deployed, "SELECT id FROM procrastinate_jobs WHERE status = 'doing'")
    looked_for_dead = await _rows(
        deployed,
        "SELECT DISTINCT (args->>'timestamp')::bigint FROM procrastinate_jobs "
        "WHERE task_name = :task ORDER BY 1",
        task=task_name(MAINTENANCE, RETRY_STALLED),
    )
    seconds = [int(at) for (at,) in looked_for_dead]
    # Every kill hit the backfill before its end, with work done and its checkpoint committed
    # with it: the counters are exactly the orders committed (nothing counted twice or lost).
    assert [state.status for state in at_kills] == ["RUNNING"] * KILLS
    assert at_kills[-1].orders_held > 0
    for state in at_kills:
        assert (state.orders_stored, state.orders_enriched) == (
            state.orders_held,
            state.orders_detailed,
        )
    assert (job["status"], job["phase"]) == ("SUCCEEDED", "DONE")
    assert job["ordersStored"] == job["ordersEnriched"] == len(truth) == 10_000
    assert_matches_amazon(amazon, seller, stored, truth)
    assert left_running == []  # nothing of a dead worker left stalled
    # The workers looked for dead ones at the pace of the heartbeat they were given.
    assert min(b - a for a, b in itertools.pairwise(seconds)) == HEARTBEAT


async def _moved_on(
    deployed: Deployed,
    workers: Workers,
    tenant: TenantCredentials,
    job_id: str,
    before: BackfillState,
) -> None:
    """Once the backfill has committed orders since ``before``."""

    async def moved() -> bool:
        now = await backfill_state(deployed, tenant, job_id)
        return (now.orders_held, now.orders_detailed) != (
            before.orders_held,
            before.orders_detailed,
        )

    await workers.until(moved)


async def _at_work(deployed: Deployed, workers: Workers, seen: set[int]) -> set[int]:
    """Once the new worker is up and no job is held by a dead one any more (the stalled step
    given back to the queue, for the new worker to take): the queue's workers seen so far."""
    fresh: set[int] = set()

    async def ready() -> bool:
        fresh.update(await queue_workers(deployed) - seen)
        if not fresh:
            return False
        held = await _rows(
            deployed,
            "SELECT id FROM procrastinate_jobs WHERE status = 'doing' "
            "AND (worker_id IS NULL OR NOT worker_id = ANY(:fresh))",
            fresh=list(fresh),
        )
        return not held

    await workers.until(ready)
    return seen | fresh


# --- 2. Amazon failing one call in ten ------------------------------------------------------------

TIMEOUT = 1.0
"""KEYBUZZ_SPAPI_TIMEOUT_SECONDS of the run: a call Amazon has not answered by then is retried."""
SLOW = 2.0
"""How late Amazon answers a call it is slow on: past ``TIMEOUT``, the client has given up."""
ENRICHMENT_AND_REPORTS = (
    "reports.createReport",
    "reports.getReport",
    "reports.getReportDocument",
    "v2026.searchOrders",
    "v0.getOrders",
)


@dataclass
class RivalApp:
    """Another app the seller authorised, on the same quota (Amazon's buckets are the seller's,
    shared by every app): it spends ``share`` of each bucket's refill, and empties each bucket
    once, in a burst of its own, as soon as KeyBuzz has had an answer on it. Amazon's buckets
    then hold less than KeyBuzz's client counts on, and some of its calls get 429.

    (Only once answered: the answer tells the client the simulator's scaled rate, as it knows
    Amazon's own; a 429 before it would have the client wait at Amazon's real pace.)"""

    server: SimulatorServer
    seller: str
    share: float
    operations: tuple[str, ...] = ENRICHMENT_AND_REPORTS

    @contextmanager
    def spending(self) -> Iterator[None]:
        stop = threading.Event()
        thread = threading.Thread(target=self._spend, args=(stop,), daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def _spend(self, stop: threading.Event) -> None:
        simulator, limiter = self.server.simulator, self.server.simulator.limiter
        owed = dict.fromkeys(self.operations, 0.0)
        burst_left = set(self.operations)
        last = time.monotonic()
        while not stop.wait(0.05):
            now = time.monotonic()
            elapsed, last = now - last, now
            with simulator.lock:
                answered = {
                    operation
                    for operation, entry in simulator.counters().items()
                    if any(code.startswith("2") for code in entry["statuses"])
                }
                for operation in self.operations:
                    if operation in burst_left and operation in answered:
                        burst_left.remove(operation)
                        while limiter.try_acquire(self.seller, operation):
                            pass
                    owed[operation] += self.share * limiter.plan(operation).rate * elapsed
                    while owed[operation] >= 1:
                        owed[operation] -= 1
                        if not limiter.try_acquire(self.seller, operation):
                            owed[operation] = 0.0  # Amazon said 429 to it too


def spapi_calls(server: SimulatorServer) -> dict[str, int]:
    """What the seller's SP-API calls met: all, 429, 5xx, and answered too late."""
    counters = [
        entry
        for operation, entry in server.simulator.counters().items()
        if operation.split(".")[0] in ("reports", "v0", "v2026", "tokens", "sellers")
    ]
    statuses = [(int(code), n) for entry in counters for code, n in entry["statuses"].items()]
    return {
        "all": sum(entry["requests"] for entry in counters),
        "429": sum(n for code, n in statuses if code == 429),
        "5xx": sum(n for code, n in statuses if code >= 500),
        "slow": sum(entry["faults"].get(FaultKind.SLOW.value, 0) for entry in counters),
    }


@pytest.mark.slow
async def test_a_backfill_while_amazon_fails_one_call_in_ten_ends_with_exactly_its_orders(
    deployed: Deployed,
    amazon: SimulatorServer,
    fresh_database_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    seller = settled_seller(amazon, 5000)
    tenant = await deployed.tenant()
    truth = amazon.simulator.ground_truth(seller)["orders"]
    job_id = await request_backfill(deployed, tenant)
    amazon.simulator.reset_counters()
    amazon.simulator.set_faults(
        FaultSettings(error_rate=0.06, slow_rate=0.04, slow_seconds=SLOW, seed=11)
    )
    # One of each early on, whatever the draws.
    amazon.simulator.script_faults(
        [
            ScriptedFault(FaultKind.SERVICE_UNAVAILABLE, "reports.createReport"),
            ScriptedFault(FaultKind.SLOW, "reports.getReportDocument"),
            ScriptedFault(FaultKind.INTERNAL_ERROR, "v2026.searchOrders"),
            ScriptedFault(FaultKind.SLOW, "v0.getOrders"),
        ]
    )
    settings = amazon_settings(
        deployed.runtime.settings.data_dir, amazon, spapi_timeout_seconds=TIMEOUT
    )
    assert settings.spapi_timeout_seconds < SLOW

    impatient_runtime = open_runtime(settings, database_url=fresh_database_url, jobs=job_groups())
    async with impatient_runtime as impatient:
        with RivalApp(amazon, seller, share=0.2).spending():
            await deployed.run_jobs(
                until=lambda: deployed.backfill_over(tenant, job_id), runtime=impatient
            )

    calls = spapi_calls(amazon)
    job = await deployed.backfill_job(tenant, job_id)
    stored = await stored_orders(deployed.client, tenant)
    assert calls["429"] > 0, calls
    assert calls["5xx"] > 0, calls
    assert calls["slow"] > 0, calls
    assert any("Timeout after" in message for message in caplog.messages)  # the client gave up
    assert (job["status"], job["phase"]) == ("SUCCEEDED", "DONE")
    assert job["ordersStored"] == job["ordersEnriched"] == len(truth) == 5000
    assert_matches_amazon(amazon, seller, stored, truth)


# --- 3. Three workers, ten tenants ----------------------------------------------------------------

TENANTS = 10
ORDERS_EACH = 400


@pytest.mark.slow
async def test_three_workers_backfill_ten_tenants_each_order_once_each_step_alone(
    deployed: Deployed, amazon: SimulatorServer, workers: Workers
) -> None:
    shops: list[tuple[TenantCredentials, str, list[dict[str, Any]]]] = []
    for number in range(TENANTS):
        seller = settled_seller(amazon, ORDERS_EACH, seed=100 + number)
        tenant = await deployed.tenant(f"shop-{number:02d}")
        shops.append((tenant, seller, amazon.simulator.ground_truth(seller)["orders"]))
    jobs = [await request_backfill(deployed, tenant) for tenant, _, _ in shops]

    # The default heartbeat: no worker is dead here, none may be taken for dead while busy.
    running = [
        workers.start(worker_concurrency="4", worker_heartbeat_seconds="5") for _ in range(3)
    ]

    async def all_over() -> bool:
        pairs = zip(shops, jobs, strict=True)
        return all([await deployed.backfill_over(tenant, job) for (tenant, _, _), job in pairs])

    await workers.until(all_over)
    steps = await _rows(
        deployed,
        "SELECT j.id, j.worker_id, count(*) FILTER (WHERE e.type = 'started') "
        "FROM procrastinate_jobs j JOIN procrastinate_events e ON e.job_id = j.id "
        "WHERE j.task_name = :task GROUP BY j.id",
        task=BACKFILL_STEP,
    )
    for worker in running:
        assert await workers.stop(worker) == 0

    ran_by = {worker for _, worker, _ in steps}
    assert len(ran_by) > 1, ran_by  # the steps went from worker to worker
    assert {started for _, _, started in steps} == {1}  # no step ran twice
    for (tenant, seller, truth), job_id in zip(shops, jobs, strict=True):
        job = await deployed.backfill_job(tenant, job_id)
        stored = await stored_orders(deployed.client, tenant)
        assert (job["status"], job["phase"]) == ("SUCCEEDED", "DONE"), tenant.id
        # Two steps of a backfill at once would each store and count what they read.
        assert job["ordersStored"] == job["ordersEnriched"] == len(truth), tenant.id
        assert_matches_amazon(amazon, seller, stored, truth)


# --- 4. Stopped by SIGTERM ------------------------------------------------------------------------


@pytest.mark.slow
async def test_a_worker_stopped_mid_backfill_exits_with_its_checkpoint_committed(
    deployed: Deployed, amazon: SimulatorServer, workers: Workers
) -> None:
    seller = settled_seller(amazon, 10_000)
    tenant = await deployed.tenant()
    truth = amazon.simulator.ground_truth(seller)["orders"]
    job_id = await request_backfill(deployed, tenant)
    first = workers.start()

    async def enriching() -> bool:
        state = await backfill_state(deployed, tenant, job_id)
        steps = await steps_of(deployed, job_id)
        return state.orders_enriched > 0 and any(status == "doing" for _, status in steps)

    await workers.until(enriching)
    exit_code = await workers.stop(first)
    at_stop = await backfill_state(deployed, tenant, job_id)
    steps_at_stop = await steps_of(deployed, job_id)
    second = workers.start()
    await workers.until(lambda: deployed.backfill_over(tenant, job_id))
    assert await workers.stop(second) == 0

    job = await deployed.backfill_job(tenant, job_id)
    stored = await stored_orders(deployed.client, tenant)
    assert exit_code == 0
    # The running step ended at a page boundary, its work committed with its checkpoint, and
    # queued the next step: nothing left running, nothing counted that is not stored.
    assert (at_stop.status, at_stop.phase) == ("RUNNING", "ENRICHMENT")
    assert 0 < at_stop.orders_enriched == at_stop.orders_detailed < len(truth)
    assert at_stop.orders_stored == at_stop.orders_held == len(truth)
    assert [status for _, status in steps_at_stop][-2:] == ["succeeded", "todo"]
    assert "doing" not in {status for _, status in steps_at_stop}
    # The next worker went on from there: no page asked twice, none missed.
    assert (job["status"], job["phase"]) == ("SUCCEEDED", "DONE")
    assert job["ordersStored"] == job["ordersEnriched"] == len(truth)
    assert_matches_amazon(amazon, seller, stored, truth)


# --- A step killed right after queueing the next one ----------------------------------------------


async def test_a_step_killed_after_queueing_its_next_step_does_not_stop_the_recovery(
    fresh_database_url: str,
) -> None:
    """A worker killed between a step's last commit (which queued the next step) and telling the
    queue the step is over leaves it "doing" beside its successor on the same queueing lock.
    Giving it back to the queue would put two jobs on the lock, which the queue refuses: it must
    not stop the recovery of the dead worker's other jobs, nor a worker's start."""
    queue = create_job_app(fresh_database_url, job_groups())
    step = queue.configure_task(BACKFILL_STEP, queueing_lock="backfill:shop-01:amazon")
    sync = queue.configure_task(SYNC, queueing_lock="incremental:shop-02:amazon")
    async with queue.open_async():
        dead = await queue.job_manager.register_worker()
        killed = await step.defer_async(backfill_job_id=JOB, tenant_id="shop-01")
        other = await sync.defer_async(tenant_id="shop-02")
        for _ in range(2):
            assert await queue.job_manager.fetch_job(queues=None, worker_id=dead) is not None
        successor = await step.defer_async(backfill_job_id=JOB, tenant_id="shop-01")
        await asyncio.sleep(0.5)  # the dead worker's heartbeat goes stale

        retried = await retry_stalled(queue, stalled_after=0.2)
        statuses = {job.id: job.status for job in await queue.job_manager.list_jobs_async()}

    assert retried == 1
    assert statuses[other] == "todo"  # the dead worker's other job runs again
    assert statuses[successor] == "todo"  # the step's work goes on in the one it queued
    assert statuses[killed] == "failed"  # and it is not left "doing" for ever
