"""Sync engine benchmark: 90-day backfills, incremental sync lag and worker memory, end to end,
each beside the least time Amazon's limits allow.

    python bench/bench_sync.py [--orders 10000,100000] [--rate-scale 200] [--report-seconds 10]
                               [--tenants 6] [--tenant-orders 10000] [--naive-max 10000]
                               [--changes 50] [--real-changes 5] [--sync-interval 2]
                               [--lag-orders 10000]

Everything runs as deployed: the SP-API simulator in a child process (every Amazon rate
multiplied by ``--rate-scale``, bursts unchanged, order reports ready ``--report-seconds`` after
they are requested), the API (``keybuzz serve``) and one job worker (``keybuzz worker``) as
subprocesses, PostgreSQL on 127.0.0.1:5432 when it answers (else the embedded server) in a
scratch database dropped at the end. A tenant connects through the OAuth consent and asks
``POST /api/v1/orders/backfill {"days": 90}`` once the worker is idle; the benchmark reads the
job's row every 50 ms. Workers sync connections at the default interval (10 min) except in d.
For each size N of ``--orders`` (a seller of N orders over the 89 days before the last hour):

a. Coverage: from the request until the order reports are read and every order and item is
   stored (the job leaves its COVERAGE phase), over the report path's lower bound, measured on
   a seller of the same orders with nothing else running: the three createReport calls (in
   createReport's burst: no wait) and the simulator's generation time until getReport says
   DONE (polled every 50 ms, or as often as getReport's rate allows), the getReportDocument
   calls and downloads of the three documents (at once), plus the time PostgreSQL takes to
   COPY the same orders and items into empty copies of ``orders`` / ``order_items`` (same
   indexes), i.e. the fastest any import of those reports could be. Target <= 1.10.
b. Enrichment: from the end of the coverage until the job SUCCEEDED (every order enriched by the
   list APIs), over the combined buckets' bound: the ceil(N / 100) pages v2026 searchOrders
   (with ``includedData``) and v0 getOrders deliver together, each on its own bucket at
   Amazon's rate x scale, both buckets full at the start (spapi.md §3:
   ``max(0, pages - 20 - 20) / ((0.0056 + 0.0167) x scale)``; ``sync.plan.seconds_to_deliver``).
   Target <= 1.10. The whole backfill (request to SUCCEEDED) is shown beside the sum of both
   bounds: the engine enriches once the coverage is stored (its windows are cut from the stored
   order dates), and the list buckets, full meanwhile, cannot bank more than their burst.
c. The per-order v0 loop the replaced system used, on a seller of the same orders at the same
   scale: getOrders pages, and for each order its getOrderItems, one call after the other (with
   KeyBuzz's client, so its pacing is ideal and it never waits on a 429; nothing is stored: a
   favourable figure for it). Measured up to ``--naive-max`` orders; above, estimated from its
   bound (``(N - 30) / (0.5 x scale)``) times the ratio measured at the largest measured size.
d. Incremental sync lag, on a tenant of ``--lag-orders`` orders backfilled by a worker syncing
   every ``--sync-interval`` seconds (``KEYBUZZ_SYNC_INTERVAL_SECONDS``): ``--changes`` orders
   changed at Amazon (the buyer's name, via the simulator's ``change_order``) one at a time,
   each timed until the database holds it.
   Amazon shows a change to ``lastUpdatedAfter`` searches only two minutes later (a search's
   upper bound is never later than now - 2 min, spapi.md §2.3), so these changes are made with
   the simulator's clock set 120 s back: the figure is the engine's own share (waiting for the
   next sync, the job pickup, one searchOrders page, the upsert). ``--real-changes`` more are
   made on Amazon's clock and show the lag a helpdesk sees: 120 s more.
e. The worker's peak RSS (VmHWM of the ``keybuzz worker`` process) over each size's run. Target
   < 300 MB at 100,000 orders.
f. ``--tenants`` tenants of ``--tenant-orders`` orders each (a seller each) backfilling at once
   on one worker process: from the requests until the last SUCCEEDED, over the slowest tenant's
   own bound (coverage bound + enrichment bound, as in b). Target <= 1.10.

Results also go to ``bench/results/sync.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gzip
import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
import psycopg
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_orders import (
    copy_batch,
    drop_database,
    free_port,
    scratch_url,
    server_url,
)
from keybuzz.amazon import normalize
from keybuzz.amazon.client import SpApiClient
from keybuzz.amazon.flatfile import group_by_order, parse_report_lines
from keybuzz.amazon.operations import GET_ORDER_ITEMS, GET_ORDERS, GET_REPORT, SEARCH_ORDERS
from keybuzz.amazon.regions import Region
from keybuzz.amazon.registry import ConnectionRegistry
from keybuzz.amazon.reports import ORDERS_BY_ORDER_DATE
from keybuzz.amazon.windows import AMAZON_DELAY, LATEST_BEFORE, amazon_time
from keybuzz.config import Settings
from keybuzz.db import create_engine, create_sessionmaker, libpq_url, migrate, transaction
from keybuzz.marketplaces.oauth import CALLBACK_PATH
from keybuzz.orders.records import OrderRecord
from keybuzz.runtime import spapi_config
from keybuzz.simulator import SimulatorServer, SimulatorSettings
from keybuzz.sync.plan import Supply, pages_for, report_slices, seconds_to_deliver
from keybuzz.tenants.service import create_tenant

RESULTS = Path(__file__).resolve().parent / "results" / "sync.json"
FR = "A13V1IB3VIYZZH"
BACKFILL = "/api/v1/orders/backfill"
DAYS = 90
DATA_DAYS = 89
"""The seller's orders span the 89 days before ``anchor``: all inside a 90-day backfill."""
AMAZON_SECONDS = AMAZON_DELAY.total_seconds()
"""Amazon's rule: a search's upper bound is never later than now - 2 minutes."""
POLL = 0.05
TARGET_RATIO = 1.10
TARGET = f"<= {TARGET_RATIO:.2f}"
TARGET_RSS_MB = 300.0
COPY_CHUNK = 10_000


# --- The simulator, in a process of its own ----------------------------------------------------


def serve(settings: dict[str, Any], pipe: Connection) -> None:
    """Child process: the simulator, until the parent says stop."""
    with SimulatorServer(SimulatorSettings(**settings)) as server:
        pipe.send(server.base_url)
        pipe.recv()


class Amazon:
    """The simulator's inspection API (``/_sim``) and its SP-API, from this process."""

    def __init__(self, base_url: str, pid: int, rate_scale: float) -> None:
        self.base_url = base_url
        self.pid = pid
        self.rate_scale = rate_scale
        self.http = httpx.AsyncClient(base_url=base_url, timeout=600)
        self.anchor = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)

    async def seller(self, seller_id: str, orders: int, seed: int) -> None:
        body = {
            "seller_id": seller_id,
            "orders": orders,
            "days": DATA_DAYS,
            "seed": seed,
            "marketplaces": ["FR"],
            "anchor": self.anchor.isoformat(),
        }
        (await self.http.post("/_sim/sellers", json=body)).raise_for_status()

    async def consent_as(self, seller_id: str) -> None:
        (await self.http.put("/_sim/consent", json={"seller_id": seller_id})).raise_for_status()

    async def refresh_token(self, seller_id: str) -> str:
        response = await self.http.post(f"/_sim/sellers/{seller_id}/authorize")
        response.raise_for_status()
        return str(response.json()["refresh_token"])

    async def access_token(self, seller_id: str) -> str:
        defaults = SimulatorSettings()
        response = await self.http.post(
            "/auth/o2/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": await self.refresh_token(seller_id),
                "client_id": defaults.client_id,
                "client_secret": defaults.client_secret.get_secret_value(),
            },
        )
        response.raise_for_status()
        return str(response.json()["access_token"])

    async def change_buyer(self, seller_id: str, order_id: str, name: str) -> None:
        response = await self.http.patch(
            f"/_sim/sellers/{seller_id}/orders/{order_id}", json={"buyer_name": name}
        )
        response.raise_for_status()

    async def clock_offset(self, seconds: float) -> None:
        response = await self.http.post("/_sim/clock", json={"offset_seconds": seconds})
        response.raise_for_status()

    async def counters(self) -> dict[str, Any]:
        counters: dict[str, Any] = (await self.http.get("/_sim/counters")).json()
        return counters

    async def reset_counters(self) -> None:
        (await self.http.delete("/_sim/counters")).raise_for_status()

    def client(self, refresh_token: str, key: str) -> tuple[SpApiClient, httpx.AsyncClient]:
        config = spapi_config(
            Settings(
                _env_file=None,
                spapi_endpoint=self.base_url,
                lwa_token_url=self.base_url + "/auth/o2/token",
            )
        )
        http = httpx.AsyncClient(limits=httpx.Limits(max_connections=50), timeout=60)
        client = SpApiClient(
            http,
            config,
            region=Region.EU,
            refresh_token=SecretStr(refresh_token),
            connection_key=key,
            registry=ConnectionRegistry(),
        )
        return client, http


def process_cpu(pid: int) -> float:
    """User and system CPU seconds a process has used so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu() -> float:
    """Busy CPU seconds of the whole machine so far (all cores, everyone's processes)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds used by the worker, the simulator, the PostgreSQL backends of the benchmark's
    database and the whole machine (everyone's work, other users' included), at named moments.
    A backend that ends between two moments is not counted (the pools keep theirs open)."""

    def __init__(self, service: Service, worker: Worker) -> None:
        self.service = service
        self.pids = (worker.process.pid, service.amazon.pid)
        self.samples: dict[str, tuple[float, tuple[float, ...], dict[int, float]]] = {}

    async def mark(self, moment: str) -> None:
        rows = await self.service.query(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        )
        processes = (*(process_cpu(pid) for pid in self.pids), machine_cpu())
        backends = {pid: process_cpu(pid) for (pid,) in rows}
        self.samples[moment] = (time.perf_counter(), processes, backends)

    def seconds(self, start: str, end: str) -> dict[str, float]:
        """CPU seconds each used between two moments."""
        _, (worker, simulator, machine), backends = self.samples[start]
        _, (worker_end, simulator_end, machine_end), backends_end = self.samples[end]
        postgres = sum(used - backends.get(pid, 0.0) for pid, used in backends_end.items())
        return {
            "worker": round(worker_end - worker, 2),
            "simulator": round(simulator_end - simulator, 2),
            "postgres": round(postgres, 2),
            "machine": round(machine_end - machine, 2),
        }

    def cores(self, start: str, end: str) -> dict[str, float]:
        """Cores each used on average between two moments (CPU seconds per second)."""
        wall = self.samples[end][0] - self.samples[start][0]
        return {name: round(used / wall, 2) for name, used in self.seconds(start, end).items()}


def list_bucket_refill(scale: float) -> float:
    """Seconds until buckets a run used (list calls, reports, items) are full again."""
    ops = (SEARCH_ORDERS, GET_ORDERS, GET_ORDER_ITEMS)
    return max(op.plan.burst / (op.plan.rate * scale) for op in ops) + 1.0


# --- The service: API and worker as subprocesses, on a scratch database ------------------------


@dataclass
class Tenant:
    id: str
    api_key: str
    seller_id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}", "X-Tenant-Id": self.id}


@dataclass
class JobTimes:
    """One backfill as the benchmark saw it: seconds from its request."""

    job_id: str
    requested: float
    first_stored: float | None = None
    """When the first chunk of a report was stored: the engine had seen the reports ready."""
    coverage_done: float | None = None
    done: float | None = None
    status: str = "QUEUED"
    orders_stored: int = 0
    items_stored: int = 0
    orders_enriched: int = 0
    quarantined: int = 0


class Worker:
    """``keybuzz worker`` in a subprocess; its peak RSS read from ``/proc`` (VmHWM)."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "keybuzz.cli", "worker"], env=env, cwd=cwd
        )

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmHWM for the worker")

    def stop(self) -> float:
        """Stop gracefully; its peak RSS, read just before."""
        peak = self.peak_rss_mb()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return peak


class Service:
    def __init__(self, url: str, amazon: Amazon, api_port: int) -> None:
        self.url = url
        self.amazon = amazon
        self.home = Path(tempfile.mkdtemp(prefix="kb-bench-sync-"))
        public_url = f"http://127.0.0.1:{api_port}"
        self.env = {
            **os.environ,
            "KEYBUZZ_DATABASE_URL": url,
            "KEYBUZZ_DATA_DIR": str(self.home),
            "KEYBUZZ_SECRETS_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
            "KEYBUZZ_SPAPI_ENDPOINT": amazon.base_url,
            "KEYBUZZ_LWA_TOKEN_URL": amazon.base_url + "/auth/o2/token",
            "KEYBUZZ_SELLER_CENTRAL_URL": amazon.base_url,
            "KEYBUZZ_PUBLIC_URL": public_url,
            "KEYBUZZ_RUN_WORKER": "false",
            "KEYBUZZ_LOG_LEVEL": "WARNING",
        }
        self.api = subprocess.Popen(
            [sys.executable, "-m", "keybuzz.cli", "serve", "--port", str(api_port)],
            env=self.env,
            cwd=self.home,
        )
        self.http = httpx.AsyncClient(base_url=public_url, timeout=60)
        self.engine = create_engine(url, pool_size=2)
        self.sessionmaker = create_sessionmaker(engine=self.engine)
        self.db: psycopg.AsyncConnection[Any] | None = None

    async def ready(self) -> None:
        self.db = await psycopg.AsyncConnection.connect(libpq_url(self.url), autocommit=True)
        for _ in range(600):
            try:
                if (await self.http.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
        raise RuntimeError("the API did not become ready")

    async def close(self) -> None:
        self.api.terminate()
        self.api.wait(30)
        await self.http.aclose()
        if self.db is not None:
            await self.db.close()
        await self.engine.dispose()

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        assert self.db is not None
        cursor = await self.db.execute(sql, params)
        return await cursor.fetchall()

    async def start_worker(self, sync_interval: int | None = None) -> Worker:
        """A worker (syncing every ``sync_interval`` seconds, else at the default interval),
        once it has run what was due when it started: the scheduler's first round queues the
        first sync of every connection made meanwhile, and a backfill step that finds its
        connection busy with it comes back a second later, which would be timed."""
        env = dict(self.env)
        if sync_interval is not None:
            env["KEYBUZZ_SYNC_INTERVAL_SECONDS"] = str(sync_interval)
        before = (await self.query("SELECT count(*) FROM procrastinate_workers"))[0][0]
        worker = Worker(env, self.home)
        for _ in range(600):
            now = (await self.query("SELECT count(*) FROM procrastinate_workers"))[0][0]
            if now > before:
                break
            if worker.process.poll() is not None:
                raise RuntimeError("the worker stopped at start")
            await asyncio.sleep(0.1)
        else:
            raise RuntimeError("the worker did not start")
        await asyncio.sleep(1.0)
        for _ in range(600):
            due = await self.query(
                "SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing' OR "
                "(status = 'todo' AND (scheduled_at IS NULL OR scheduled_at <= now()))"
            )
            if due[0][0] == 0:
                return worker
            await asyncio.sleep(0.1)
        raise RuntimeError("the worker did not get through its first jobs")

    async def tenant(self, tenant_id: str, seller_id: str) -> Tenant:
        """A new tenant, its Amazon account connected through the consent (as a seller
        signed in as ``seller_id``)."""
        async with transaction(self.sessionmaker) as session:
            created = await create_tenant(session, tenant_id, None)
        tenant = Tenant(created.tenant.id, created.api_key, seller_id)
        await self.amazon.consent_as(seller_id)
        started = await self.http.post(
            "/api/v1/marketplaces/amazon/oauth/start", json={"region": "EU"}, headers=tenant.headers
        )
        started.raise_for_status()
        consent = await self.http.get(started.json()["authUrl"], follow_redirects=False)
        location = httpx.URL(consent.headers["location"])
        landed = await self.http.get(location.raw_path.decode(), follow_redirects=False)
        if landed.status_code != 303:
            raise RuntimeError(f"the OAuth callback answered {landed.status_code}")
        return tenant

    async def disconnect(self, tenant: Tenant) -> None:
        """Its syncs stop (they would run every few seconds through the next measures)."""
        response = await self.http.delete("/api/v1/marketplaces/amazon", headers=tenant.headers)
        response.raise_for_status()

    async def backfill(self, tenant: Tenant) -> JobTimes:
        requested = time.perf_counter()
        response = await self.http.post(BACKFILL, json={"days": DAYS}, headers=tenant.headers)
        if response.status_code != 202:
            raise RuntimeError(f"backfill request: {response.status_code} {response.text}")
        return JobTimes(response.json()["id"], requested)

    async def follow(
        self, jobs: list[JobTimes], timeout: float, meter: CpuMeter | None = None
    ) -> None:
        """Read the jobs' rows every ``POLL`` seconds until every one has ended; ``meter``
        marks the moment the last coverage ends ("coverage") and the last job ("done")."""
        deadline = time.perf_counter() + timeout
        by_id = {job.job_id: job for job in jobs}
        while any(job.done is None for job in jobs):
            if time.perf_counter() > deadline:
                raise TimeoutError("the backfills did not end in time")
            rows = await self.query(
                "SELECT id::text, status::text, phase::text, orders_stored, items_stored, "
                "orders_enriched, quarantined FROM backfill_jobs WHERE id::text = ANY(%s)",
                (list(by_id),),
            )
            now = time.perf_counter()
            for job_id, status, phase, stored, items, enriched, quarantined in rows:
                job = by_id[job_id]
                job.status = status
                job.orders_stored, job.items_stored = stored, items
                job.orders_enriched, job.quarantined = enriched, quarantined
                if job.first_stored is None and stored > 0:
                    job.first_stored = now - job.requested
                if job.coverage_done is None and phase != "COVERAGE":
                    job.coverage_done = now - job.requested
                if job.done is None and status not in ("QUEUED", "RUNNING"):
                    job.done = now - job.requested
            if meter is not None and "coverage" not in meter.samples:
                if all(job.coverage_done is not None for job in jobs):
                    await meter.mark("coverage")
            await asyncio.sleep(POLL)
        if meter is not None:
            await meter.mark("done")
        failed = [job for job in jobs if job.status != "SUCCEEDED"]
        if failed:
            raise RuntimeError(f"backfills ended {[(j.job_id, j.status) for j in failed]}")


# --- Lower bounds ------------------------------------------------------------------------------


def enrichment_bound(orders: int, scale: float) -> float:
    """Least seconds for v2026 searchOrders and v0 getOrders together to deliver the pages of
    ``orders`` orders, both buckets full at the start."""
    operations = (SEARCH_ORDERS, GET_ORDERS)
    supplies = [Supply(tokens=op.plan.burst, rate=op.plan.rate * scale) for op in operations]
    seconds = seconds_to_deliver(pages_for(orders), supplies)
    assert seconds is not None
    return seconds


def naive_bound(orders: int, scale: float) -> float:
    """Least seconds for getOrders pages and one getOrderItems per order, in parallel."""
    calls = {GET_ORDERS: pages_for(orders), GET_ORDER_ITEMS: orders}
    return max(
        max(0, count - op.plan.burst) / (op.plan.rate * scale) for op, count in calls.items()
    )


@dataclass
class ReportBound:
    """The fastest import of a 90-day backfill's order reports, in parts (seconds)."""

    orders: int
    items: int
    requested_and_generated: float
    """createReport x 3 (within its burst) until getReport says DONE for all."""
    downloaded: float
    """getReportDocument and the download (gunzipped) of the documents, all at once."""
    copied: float
    """COPY of the same orders and items into empty copies of the tables, same indexes."""

    @property
    def seconds(self) -> float:
        return self.requested_and_generated + self.downloaded + self.copied


async def measure_report_bound(amazon: Amazon, url: str, seller_id: str) -> ReportBound:
    token = await amazon.access_token(seller_id)
    headers = {"x-amz-access-token": token}
    http = amazon.http
    now = datetime.now(UTC)
    slices = report_slices(now - timedelta(days=DAYS), now - LATEST_BEFORE)

    async def create(start: datetime, end: datetime) -> str:
        body = {
            "reportType": ORDERS_BY_ORDER_DATE,
            "marketplaceIds": [FR],
            "dataStartTime": amazon_time(start),
            "dataEndTime": amazon_time(end),
        }
        response = await http.post("/reports/2021-06-30/reports", json=body, headers=headers)
        response.raise_for_status()
        return str(response.json()["reportId"])

    # Every report looked at every POLL seconds, or as often as getReport's rate allows them all.
    poll = max(POLL, len(slices) / (GET_REPORT.plan.rate * amazon.rate_scale))

    async def document_of(report_id: str) -> str | None:
        while True:
            response = await http.get(f"/reports/2021-06-30/reports/{report_id}", headers=headers)
            response.raise_for_status()
            report = response.json()
            if report["processingStatus"] in ("DONE", "CANCELLED"):
                document: str | None = report.get("reportDocumentId")
                return document
            await asyncio.sleep(poll)

    async def download(document_id: str) -> bytes:
        response = await http.get(f"/reports/2021-06-30/documents/{document_id}", headers=headers)
        response.raise_for_status()
        document = response.json()
        content = (await http.get(document["url"])).content
        if document.get("compressionAlgorithm") == "GZIP":
            content = gzip.decompress(content)
        return content

    started = time.perf_counter()
    report_ids = await asyncio.gather(*(create(s.start, s.end) for s in slices))
    documents = [d for d in await asyncio.gather(*map(document_of, report_ids)) if d]
    generated = time.perf_counter()
    contents = await asyncio.gather(*map(download, documents))
    downloaded = time.perf_counter()

    records = [record for content in contents for record in await report_orders(content)]
    copied = await copy_seconds(url, records)
    return ReportBound(
        orders=len(records),
        items=sum(len(record.items or ()) for record in records),
        requested_and_generated=generated - started,
        downloaded=downloaded - generated,
        copied=copied,
    )


async def report_orders(content: bytes) -> list[OrderRecord]:
    async def chunks() -> AsyncIterator[bytes]:
        yield content

    records = []
    async for group in group_by_order(parse_report_lines(chunks())):
        record = normalize.from_report_lines(group.lines)
        if isinstance(record, OrderRecord):
            records.append(record)
    return records


async def copy_seconds(url: str, records: list[OrderRecord]) -> float:
    """COPY the orders and items into empty copies of the tables (same indexes), as
    ``bench_orders`` does, in transactions of ``COPY_CHUNK`` orders; only the COPY is timed."""
    suffix = uuid.uuid4().hex[:8]
    orders_table, items_table = f"bound_orders_{suffix}", f"bound_items_{suffix}"
    async with await psycopg.AsyncConnection.connect(libpq_url(url), autocommit=True) as conn:
        await conn.execute(f"CREATE TABLE {orders_table} (LIKE orders INCLUDING ALL)")
        await conn.execute(f"CREATE TABLE {items_table} (LIKE order_items INCLUDING ALL)")
        elapsed = 0.0
        try:
            for start in range(0, len(records), COPY_CHUNK):
                chunk = records[start : start + COPY_CHUNK]
                elapsed += await copy_batch(conn, orders_table, items_table, chunk)
        finally:
            await conn.execute(f"DROP TABLE {orders_table}, {items_table}")
    return elapsed


# --- c. The per-order v0 loop ------------------------------------------------------------------


async def naive_v0_loop(amazon: Amazon, seller_id: str) -> dict[str, float]:
    """getOrders pages, then getOrderItems for each order, one call after the other."""
    client, http = amazon.client(await amazon.refresh_token(seller_id), f"naive-{seller_id}")
    orders = items = 0
    now = datetime.now(UTC)
    try:
        await client.check_credentials()
        started = time.perf_counter()
        async for page in client.orders_v0.get_orders(
            marketplace_ids=[FR],
            created_after=now - timedelta(days=DAYS),
            created_before=now - LATEST_BEFORE,
        ):
            for order in page.orders:
                orders += 1
                items += len(await client.orders_v0.get_order_items(order.amazon_order_id))
        seconds = time.perf_counter() - started
    finally:
        await http.aclose()
    return {"seconds": seconds, "orders": orders, "items": items}


# --- d. Incremental sync lag -------------------------------------------------------------------


async def sync_lag(
    service: Service, tenant: Tenant, changes: int, real_changes: int
) -> dict[str, Any]:
    """Orders changed at Amazon one by one, each timed until the database holds the change."""
    amazon = service.amazon
    old = datetime.now(UTC) - timedelta(days=45)  # settled orders: no change of their own
    # Shipped orders: Amazon shows their buyer's name (not a cancelled or pending order's).
    rows = await service.query(
        "SELECT external_order_id FROM orders WHERE tenant_id = %s AND order_date < %s "
        "AND order_status IN ('SHIPPED', 'DELIVERED') AND customer_name IS NOT NULL "
        "ORDER BY random() LIMIT %s",
        (tenant.id, old, changes + real_changes),
    )
    order_ids = [row[0] for row in rows]
    made: dict[str, tuple[str, float]] = {}  # order id: (the buyer's new name, when)
    seen: dict[str, float] = {}
    rng = random.Random(7)

    async def change(order_id: str, backdated: bool) -> None:
        name = f"Lag {uuid.uuid4().hex[:12]}"
        if backdated:
            await amazon.clock_offset(-AMAZON_SECONDS)
        try:
            await amazon.change_buyer(tenant.seller_id, order_id, name)
            made[order_id] = (name, time.perf_counter())
        finally:
            if backdated:
                await amazon.clock_offset(0)

    async def watch() -> None:
        while True:
            pending = [order_id for order_id in made if order_id not in seen]
            if pending:
                found = await service.query(
                    "SELECT external_order_id, customer_name FROM orders "
                    "WHERE tenant_id = %s AND external_order_id = ANY(%s)",
                    (tenant.id, pending),
                )
                now = time.perf_counter()
                for order_id, name in found:
                    if name == made[order_id][0]:
                        seen[order_id] = now - made[order_id][1]
            await asyncio.sleep(POLL / 2)

    await amazon.reset_counters()
    started = time.perf_counter()
    for order_id in order_ids[changes:]:
        await change(order_id, backdated=False)
    watching = asyncio.create_task(watch())
    try:
        for order_id in order_ids[:changes]:
            await change(order_id, backdated=True)
            await asyncio.sleep(rng.uniform(0.3, 1.0))
        backdated_ids = order_ids[:changes]
        deadline = time.perf_counter() + 60
        while not all(o in seen for o in backdated_ids) and time.perf_counter() < deadline:
            await asyncio.sleep(POLL)
        real_ids = order_ids[changes:]
        deadline = time.perf_counter() + AMAZON_SECONDS + 60
        while not all(o in seen for o in real_ids) and time.perf_counter() < deadline:
            await asyncio.sleep(POLL)
    finally:
        watching.cancel()
    searches = (await amazon.counters()).get(SEARCH_ORDERS.name, {})
    elapsed = time.perf_counter() - started
    engine_lags = [seen[o] for o in order_ids[:changes] if o in seen]
    real_lags = [seen[o] for o in order_ids[changes:] if o in seen]
    return {
        "changes": changes,
        "engine_lags": engine_lags,
        "engine_missed": changes - len(engine_lags),
        "real_changes": real_changes,
        "real_lags": real_lags,
        "real_missed": real_changes - len(real_lags),
        "sync_calls": searches.get("requests", 0),
        "sync_call_statuses": searches.get("statuses", {}),
        "mean_sync_cycle": round(elapsed / max(1, searches.get("requests", 0)), 3),
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


# --- The runs ----------------------------------------------------------------------------------


@dataclass
class Options:
    sizes: list[int]
    rate_scale: float
    report_seconds: float
    tenants: int
    tenant_orders: int
    naive_max: int
    changes: int
    real_changes: int
    sync_interval: int
    lag_orders: int


@dataclass
class Results:
    options: Options
    sizes: list[dict[str, Any]] = field(default_factory=list)
    naive: list[dict[str, Any]] = field(default_factory=list)
    lag: dict[str, Any] | None = None
    tenants: dict[str, Any] | None = None


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def settle(amazon: Amazon) -> None:
    """Every bucket a seller used is full again (the next measure starts as Amazon would)."""
    await asyncio.sleep(list_bucket_refill(amazon.rate_scale))


async def one_size(service: Service, options: Options, size: int, results: Results) -> None:
    amazon = service.amazon
    scale = options.rate_scale
    seller = f"ABENCHSYNC{size}"
    log(f"[{size:,} orders] simulator seller, tenant, worker...")
    await amazon.seller(seller, size, seed=size)
    tenant = await service.tenant(f"bench-{size}", seller)
    worker = await service.start_worker()
    await amazon.reset_counters()
    meter = CpuMeter(service, worker)
    await meter.mark("request")
    job = await service.backfill(tenant)
    await service.follow([job], timeout=36_000, meter=meter)
    assert job.coverage_done is not None
    assert job.done is not None
    counters = await amazon.counters()
    log(
        f"[{size:,} orders] backfill: coverage {job.coverage_done:.2f} s, "
        f"done {job.done:.2f} s ({job.orders_stored:,} orders, {job.items_stored:,} items)"
    )
    await service.disconnect(tenant)
    peak_rss = worker.stop()

    log(f"[{size:,} orders] report path's bound, on a seller of the same orders...")
    probe = f"ABENCHPROBE{size}"
    await amazon.seller(probe, size, seed=size)
    bound = await measure_report_bound(amazon, service.url, probe)
    stored = (
        await service.query(
            "SELECT count(*), (SELECT count(*) FROM order_items WHERE tenant_id = %s) "
            "FROM orders WHERE tenant_id = %s",
            (tenant.id, tenant.id),
        )
    )[0]
    enrichment_seconds = job.done - job.coverage_done
    b_bound = enrichment_bound(size, scale)
    row = {
        "orders": size,
        "first_chunk_stored_seconds": round(job.first_stored or 0, 3),
        "coverage_seconds": round(job.coverage_done, 3),
        "report_bound": {
            "seconds": round(bound.seconds, 3),
            "requested_and_generated": round(bound.requested_and_generated, 3),
            "downloaded": round(bound.downloaded, 3),
            "copied": round(bound.copied, 3),
            "orders": bound.orders,
            "items": bound.items,
        },
        "coverage_ratio": round(job.coverage_done / bound.seconds, 3),
        "enrichment_seconds": round(enrichment_seconds, 3),
        "enrichment_bound": round(b_bound, 3),
        "enrichment_ratio": round(enrichment_seconds / b_bound, 3) if b_bound > 0 else None,
        "backfill_seconds": round(job.done, 3),
        "backfill_bound": round(bound.seconds + b_bound, 3),
        "backfill_ratio": round(job.done / (bound.seconds + b_bound), 3),
        "orders_stored": stored[0],
        "items_stored": stored[1],
        "orders_enriched": job.orders_enriched,
        "quarantined": job.quarantined,
        "list_pages": {
            name: counters.get(name, {}).get("requests", 0)
            for name in (SEARCH_ORDERS.name, GET_ORDERS.name)
        },
        "throttled_429": sum(int(entry.get("throttled", 0)) for entry in counters.values()),
        "worker_peak_rss_mb": round(peak_rss, 1),
        "cpu_cores": meter.cores("request", "done"),
        "cpu_seconds_coverage": meter.seconds("request", "coverage"),
        "cpu_seconds_enrichment": meter.seconds("coverage", "done"),
    }
    results.sizes.append(row)
    print(describe_size(row, scale), flush=True)

    if size <= options.naive_max:
        log(f"[{size:,} orders] the per-order v0 loop...")
        await settle(amazon)
        naive = await naive_v0_loop(amazon, probe)
        bound_seconds = naive_bound(size, scale)
        results.naive.append(
            {
                "orders": size,
                "measured": True,
                "seconds": round(naive["seconds"], 2),
                "bound": round(bound_seconds, 2),
                "ratio": round(naive["seconds"] / bound_seconds, 3),
                "fetched_orders": naive["orders"],
                "fetched_items": naive["items"],
            }
        )
    else:
        measured = [n for n in results.naive if n["measured"]]
        ratio = measured[-1]["ratio"] if measured else 1.0
        bound_seconds = naive_bound(size, scale)
        results.naive.append(
            {
                "orders": size,
                "measured": False,
                "seconds": round(bound_seconds * ratio, 2),
                "bound": round(bound_seconds, 2),
                "ratio": ratio,
            }
        )


async def lag_phase(service: Service, options: Options, results: Results) -> None:
    """d: a tenant backfilled by a worker syncing every ``--sync-interval`` seconds, then its
    orders changed at Amazon one by one."""
    amazon, size = service.amazon, options.lag_orders
    log(f"[sync lag, {size:,} orders] tenant, worker syncing every {options.sync_interval} s...")
    seller = "ABENCHLAG"
    await amazon.seller(seller, size, seed=size + 1)
    tenant = await service.tenant("bench-lag", seller)
    worker = await service.start_worker(sync_interval=options.sync_interval)
    await service.follow([await service.backfill(tenant)], timeout=36_000)
    await asyncio.sleep(3 * options.sync_interval)  # the syncs after the backfill have begun
    log(f"[sync lag] {options.changes} + {options.real_changes} changes...")
    lag = await sync_lag(service, tenant, options.changes, options.real_changes)
    await service.disconnect(tenant)
    worker.stop()
    results.lag = {"orders": size, **lag}


async def many_tenants(service: Service, options: Options, results: Results) -> None:
    amazon, size, count = service.amazon, options.tenant_orders, options.tenants
    log(f"[{count} tenants x {size:,} orders] sellers, tenants, worker...")
    tenants = []
    for number in range(count):
        seller = f"ABENCHMANY{number}"
        await amazon.seller(seller, size, seed=1000 + number)
        tenants.append(await service.tenant(f"bench-many-{number}", seller))
    worker = await service.start_worker()
    await amazon.reset_counters()
    meter = CpuMeter(service, worker)
    await meter.mark("request")
    jobs = await asyncio.gather(*(service.backfill(tenant) for tenant in tenants))
    started = min(job.requested for job in jobs)
    await service.follow(list(jobs), timeout=36_000, meter=meter)
    counters = await amazon.counters()
    for tenant in tenants:
        await service.disconnect(tenant)
    peak_rss = worker.stop()
    finish = max(job.requested + (job.done or 0) for job in jobs) - started

    log(f"[{count} tenants x {size:,} orders] the report path's bound of one of them...")
    await amazon.seller("ABENCHMANYPROBE", size, seed=1000)
    report = await measure_report_bound(amazon, service.url, "ABENCHMANYPROBE")
    bound = report.seconds + enrichment_bound(size, options.rate_scale)
    results.tenants = {
        "tenants": count,
        "orders_each": size,
        "finish_seconds": round(finish, 3),
        "first_done_seconds": round(min(job.done or 0 for job in jobs), 3),
        "coverage_seconds": [round(job.coverage_done or 0, 3) for job in jobs],
        "slowest_tenant_bound": round(bound, 3),
        "report_bound": round(report.seconds, 3),
        "enrichment_bound": round(enrichment_bound(size, options.rate_scale), 3),
        "ratio": round(finish / bound, 3),
        "throttled_429": sum(int(entry.get("throttled", 0)) for entry in counters.values()),
        "worker_peak_rss_mb": round(peak_rss, 1),
        "cpu_cores": meter.cores("request", "done"),
        "cpu_seconds_coverage": meter.seconds("request", "coverage"),
        "cpu_seconds_enrichment": meter.seconds("coverage", "done"),
        "list_pages": {
            name: counters.get(name, {}).get("requests", 0)
            for name in (SEARCH_ORDERS.name, GET_ORDERS.name)
        },
    }


async def run(options: Options, url: str, simulator: tuple[str, int], api_port: int) -> Results:
    amazon = Amazon(*simulator, options.rate_scale)
    service = Service(url, amazon, api_port)
    results = Results(options)
    try:
        await service.ready()
        for size in options.sizes:
            await one_size(service, options, size, results)
        if options.changes + options.real_changes > 0:
            await lag_phase(service, options, results)
        if options.tenants > 0:
            await many_tenants(service, options, results)
    finally:
        await service.close()
        await amazon.http.aclose()
    return results


# --- Output ------------------------------------------------------------------------------------


def ratio_text(ratio: float | None) -> str:
    return "— (in burst)" if ratio is None else f"{ratio:.3f}"


def describe_size(row: dict[str, Any], scale: float) -> str:
    report = row["report_bound"]
    return (
        f"N={row['orders']:,}: coverage {row['coverage_seconds']:.2f} s / report bound "
        f"{report['seconds']:.2f} s (createReport + generation "
        f"{report['requested_and_generated']:.2f}"
        f" + download {report['downloaded']:.2f} + COPY {report['copied']:.2f}) = "
        f"{row['coverage_ratio']:.3f} (first chunk stored at "
        f"{row['first_chunk_stored_seconds']:.2f} s)"
        f"; enrichment {row['enrichment_seconds']:.2f} s / bucket bound "
        f"{row['enrichment_bound']:.2f} s = {ratio_text(row['enrichment_ratio'])}; "
        f"list pages {row['list_pages']}; 429s {row['throttled_429']}; "
        f"worker peak RSS {row['worker_peak_rss_mb']:.0f} MB; CPU in cores {row['cpu_cores']}, "
        f"CPU seconds coverage {row['cpu_seconds_coverage']}, "
        f"enrichment {row['cpu_seconds_enrichment']}"
    )


def table(results: Results) -> str:
    options = results.options
    lines = [
        "",
        f"Sync engine, rates x{options.rate_scale:g} (bursts unchanged), order reports ready "
        f"{options.report_seconds:g} s after they are requested; machine: {os.cpu_count()} cores "
        "shared by the simulator, API, worker, PostgreSQL and this process.",
        "",
        f"{'figure':<46} {'orders':>9} {'measured':>10} {'bound':>9} {'ratio':>7}  target",
    ]

    def row(name: str, orders: str, measured: str, bound: str, ratio: str, target: str) -> None:
        lines.append(f"{name:<46} {orders:>9} {measured:>10} {bound:>9} {ratio:>7}  {target}")

    for size in results.sizes:
        n = f"{size['orders']:,}"
        row(
            "a. coverage: request -> all orders+items stored",
            n,
            f"{size['coverage_seconds']:.2f} s",
            f"{size['report_bound']['seconds']:.2f} s",
            f"{size['coverage_ratio']:.3f}",
            TARGET,
        )
        enrichment_ratio = size["enrichment_ratio"]
        row(
            "b. enrichment: coverage done -> SUCCEEDED",
            n,
            f"{size['enrichment_seconds']:.2f} s",
            f"{size['enrichment_bound']:.2f} s",
            "—" if enrichment_ratio is None else f"{enrichment_ratio:.3f}",
            TARGET if enrichment_ratio is not None else "(pages within the bursts)",
        )
        row(
            "   whole backfill: request -> SUCCEEDED",
            n,
            f"{size['backfill_seconds']:.2f} s",
            f"{size['backfill_bound']:.2f} s",
            f"{size['backfill_ratio']:.3f}",
            "(bound: a + b)",
        )
    for naive in results.naive:
        keybuzz = next(s for s in results.sizes if s["orders"] == naive["orders"])
        how = "measured" if naive["measured"] else "ESTIMATED: bound x ratio measured"
        row(
            "c. per-order v0 loop (getOrders+getOrderItems)",
            f"{naive['orders']:,}",
            f"{naive['seconds']:.1f} s",
            f"{naive['bound']:.1f} s",
            f"{naive['ratio']:.3f}",
            f"{how}; {naive['seconds'] / keybuzz['backfill_seconds']:.1f}x the whole backfill",
        )
    if results.lag is not None:
        lag = results.lag
        engine = lag["engine_lags"]
        if engine:
            row(
                f"d. sync lag, engine's share ({len(engine)} changes)",
                f"{lag['orders']:,}",
                f"p50 {percentile(engine, 50):.2f} s",
                "",
                "",
                f"p99 {percentile(engine, 99):.2f} s, max {max(engine):.2f} s; interval "
                f"{options.sync_interval} s, a searchOrders call every "
                f"{lag['mean_sync_cycle']:.2f} s; missed {lag['engine_missed']}",
            )
        real = lag["real_lags"]
        if real:
            row(
                f"   sync lag on Amazon's clock ({len(real)} changes)",
                f"{lag['orders']:,}",
                f"p50 {percentile(real, 50):.2f} s",
                "",
                "",
                f"max {max(real):.2f} s = 120 s (Amazon's rule) + the engine's share; "
                f"missed {lag['real_missed']}",
            )
    for size in results.sizes:
        row(
            "e. worker peak RSS",
            f"{size['orders']:,}",
            f"{size['worker_peak_rss_mb']:.0f} MB",
            "",
            "",
            f"< {TARGET_RSS_MB:.0f} MB",
        )
    if results.tenants is not None:
        many = results.tenants
        row(
            f"f. {many['tenants']} tenants at once, one worker",
            f"{many['tenants']}x{many['orders_each']:,}",
            f"{many['finish_seconds']:.2f} s",
            f"{many['slowest_tenant_bound']:.2f} s",
            f"{many['ratio']:.3f}",
            f"{TARGET}; first done {many['first_done_seconds']:.2f} s, "
            f"worker peak {many['worker_peak_rss_mb']:.0f} MB, 429s {many['throttled_429']}",
        )
        cores = many["cpu_cores"]
        row(
            "   CPU meanwhile, in cores",
            "",
            "",
            "",
            "",
            f"worker {cores['worker']:.2f}, simulator {cores['simulator']:.2f}, PostgreSQL "
            f"{cores['postgres']:.2f}, machine {cores['machine']:.2f} (of {os.cpu_count()})",
        )
    lines.append("")
    lines.append(
        "Bounds: a = createReport x3 (burst) + the simulator's generation + getReportDocument and "
        "download + COPY of the same rows into empty indexed copies of the tables; b = "
        "max(0, pages - 40) / ((0.0056 + 0.0167) x scale), pages = ceil(N / 100); c = "
        "max over getOrders, getOrderItems of (calls - burst) / (rate x scale); f = a + b of "
        "one tenant, measured alone."
    )
    return "\n".join(lines)


# --- Main --------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--orders", default="10000", help="sizes, e.g. 10000,100000")
    parser.add_argument("--rate-scale", type=float, default=200.0)
    parser.add_argument("--report-seconds", type=float, default=10.0)
    parser.add_argument("--tenants", type=int, default=6)
    parser.add_argument("--tenant-orders", type=int, default=10_000)
    parser.add_argument("--naive-max", type=int, default=10_000)
    parser.add_argument("--changes", type=int, default=50)
    parser.add_argument("--real-changes", type=int, default=5)
    parser.add_argument("--sync-interval", type=int, default=2)
    parser.add_argument("--lag-orders", type=int, default=10_000)
    args = parser.parse_args()
    options = Options(
        sizes=[int(size) for size in args.orders.split(",") if size],
        rate_scale=args.rate_scale,
        report_seconds=args.report_seconds,
        tenants=args.tenants,
        tenant_orders=args.tenant_orders,
        naive_max=args.naive_max,
        changes=args.changes,
        real_changes=args.real_changes,
        sync_interval=args.sync_interval,
        lag_orders=args.lag_orders,
    )

    api_port = free_port()
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    settings = {
        "orders": 0,
        "rate_scale": options.rate_scale,
        "report_generation_seconds": options.report_seconds,
        "redirect_uris": [f"http://127.0.0.1:{api_port}{CALLBACK_PATH}"],
    }
    simulator = context.Process(target=serve, args=(settings, child), daemon=True)
    simulator.start()
    simulator_url = parent.recv()
    server = server_url()
    name, url = scratch_url(server)
    log(f"simulator at {simulator_url} (own process), database {name}, rates x{args.rate_scale:g}")
    try:
        migrate(url)
        assert simulator.pid is not None
        results = asyncio.run(run(options, url, (simulator_url, simulator.pid), api_port))
    finally:
        parent.send("stop")
        simulator.join(30)
        drop_database(server, name)
    print(table(results), flush=True)
    RESULTS.parent.mkdir(exist_ok=True)
    document = {
        "options": options.__dict__,
        "cores": os.cpu_count(),
        "sizes": results.sizes,
        "naive_v0_loop": results.naive,
        "sync_lag": results.lag,
        "tenants": results.tenants,
    }
    RESULTS.write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    main()
