"""The Orders API under load against the statements it sends, sent straight to PostgreSQL.

    python bench/bench_api.py [--orders 1000000] [--connections 32] [--seconds 60]
                              [--warmup 10] [--rounds 3] [--workers N] [--samples 300]
                              [--database NAME]

One tenant with ``--orders`` orders (2.5 items each, COPYed: about 2 minutes a million). Four
query kinds of ``GET /api/v1/orders``: the first page, ``orderStatus=SHIPPED``, ``q=<a buyer's
full name>`` and a cursor 90 % deep. Two sides load the same mix:

- **API**: ``keybuzz serve --workers N`` (default: the machine's cores), ``--connections``
  clients, each on its own keep-alive HTTP/1.1 connection, sending the four kinds in turn. The
  clients are a few lines over asyncio's streams (``HttpConnection``): the load generator shares
  the cores with what it measures, and aiohttp's client cost about 0.4 ms of CPU a request
  there (a third of the API processes' own; ours 0.09), which weighed on the API's side only.
  Its processes hold ``--connections`` read connections together, as many as the SQL side's
  pool (``KEYBUZZ_DB_POOL_SIZE`` = ``--connections`` / N each, rounded up). Each process once
  opened ``--connections`` of its own: twice as many backends as the SQL side at 2 processes
  (and a server of ``max_connections`` 100 running out of them), each prepared its statements
  later (psycopg prepares a statement at its sixth execution on a connection) and left less
  of the CPU cache to the others. The kernel does not spread the clients exactly evenly over
  the processes (19 and 13 of 32, say): a process with more clients than connections queues
  the few extra ones in its pool, which costs little: the cores, not the connections, are
  what the requests wait for.
- **SQL**: the same transactions the API sends for those requests (``keybuzz.reads``: BEGIN, the
  API key's check that sets ``app.tenant_id``, the list statement, COMMIT, in one round trip),
  through a psycopg pool of ``--connections`` connections, by as many clients.

Each side first runs ``--warmup`` seconds unmeasured: its pools reach their size and every
connection has prepared its statements. Then ``--seconds`` of each side, measured in
``--rounds`` rounds of four slices in the order API, SQL, SQL, API (3 rounds: six slices of
10 s a side), so that the machine's drift (other work, caches) weighs on both alike: measured
API-then-SQL, the first side paid for the warm-up of caches and of new connections, and with
one round (two 30 s halves a side) the ratio moved 0.76-0.88 between runs of the same code.
PostgreSQL's CPU counts every backend of the database that ran during a slice, those born
during it too.

Then one client alone, ``--samples`` requests of each kind through each. Printed and written
to ``bench/results/bench_api.json``: requests per second and their ratio (target API >= 0.8 x
SQL), p50/p95/p99 of each kind under load, the single client's p99 ratio per kind (target
<= 2 x), and CPU per request: the API processes', PostgreSQL's backends' (from /proc) and the
benchmark's own (its clients: HTTP on the API's side, psycopg on the SQL side). Both sides'
clients run on uvloop, as the API does.

The scratch database is dropped at the end; ``--database NAME`` keeps (and on a later run
reuses) a seeded one instead. Uses the machine's PostgreSQL on 127.0.0.1:5432 when it answers
(else the embedded server). Run it on a quiet machine: client, API and PostgreSQL share it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import psutil
import psycopg
import uvloop
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_orders import (
    RESULTS,
    TENANT,
    UNMET_RATE_LIMITS,
    a_buyer_name,
    deep_cursor,
    drop_database,
    fill,
    free_port,
    issue_key,
    percentile,
    scratch_url,
    server_url,
)
from keybuzz.db import app_role_url, libpq_url, migrate
from keybuzz.orders.reads import list_sql
from keybuzz.orders.schemas import OrderListParams
from keybuzz.orders.service import build_query
from keybuzz.reads import Reads, Sql, open_read_pool
from keybuzz.tenants.service import Credentials, credential_check


@dataclass
class Kind:
    name: str
    params: dict[str, str]
    check: Sql = field(init=False)
    query: Sql = field(init=False)


@dataclass
class Run:
    latencies: dict[str, list[float]]
    requests: int
    seconds: float
    api_cpu_seconds: float
    postgres_cpu_seconds: float
    client_cpu_seconds: float

    def __add__(self, other: Run) -> Run:
        return Run(
            latencies={
                kind: values + other.latencies[kind] for kind, values in self.latencies.items()
            },
            requests=self.requests + other.requests,
            seconds=self.seconds + other.seconds,
            api_cpu_seconds=self.api_cpu_seconds + other.api_cpu_seconds,
            postgres_cpu_seconds=self.postgres_cpu_seconds + other.postgres_cpu_seconds,
            client_cpu_seconds=self.client_cpu_seconds + other.client_cpu_seconds,
        )

    def summary(self) -> dict[str, Any]:
        every = [value for values in self.latencies.values() for value in values]
        return {
            "requests_per_s": round(self.requests / self.seconds, 1),
            "p50_ms": round(statistics.median(every), 2),
            "p95_ms": round(percentile(every, 95), 2),
            "p99_ms": round(percentile(every, 99), 2),
            "by_kind": {
                kind: {
                    "p50_ms": round(statistics.median(values), 2),
                    "p95_ms": round(percentile(values, 95), 2),
                    "p99_ms": round(percentile(values, 99), 2),
                }
                for kind, values in self.latencies.items()
            },
            "api_cpu_ms_per_request": round(self.api_cpu_seconds * 1000 / self.requests, 3),
            "postgres_cpu_ms_per_request": round(
                self.postgres_cpu_seconds * 1000 / self.requests, 3
            ),
            "client_cpu_ms_per_request": round(self.client_cpu_seconds * 1000 / self.requests, 3),
        }


# --- CPU ---------------------------------------------------------------------------------------


def cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def api_processes(server: subprocess.Popen[bytes]) -> list[psutil.Process]:
    parent = psutil.Process(server.pid)
    return [parent, *parent.children(recursive=True)]


def backend_cpu(url: str) -> dict[int, float]:
    """CPU seconds of each of this database's PostgreSQL backends (a server on this machine)."""
    database = make_url(url).database
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        pids = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchall()
    found = {}
    for (pid,) in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        found[pid] = times.user + times.system
    return found


# --- Load ----------------------------------------------------------------------------------------


async def drive(
    call: Callable[[Kind], Awaitable[None]],
    kinds: list[Kind],
    *,
    connections: int,
    seconds: float,
    latencies: dict[str, list[float]] | None = None,
) -> int:
    """``connections`` clients, each sending the kinds in turn for ``seconds``; requests sent."""
    deadline = time.perf_counter() + seconds

    async def client(number: int) -> int:
        done = 0
        while time.perf_counter() < deadline:
            kind = kinds[(number + done) % len(kinds)]
            started = time.perf_counter()
            await call(kind)
            if latencies is not None:
                latencies[kind.name].append((time.perf_counter() - started) * 1000)
            done += 1
        return done

    return sum(await asyncio.gather(*(client(n) for n in range(connections))))


async def load(
    call: Callable[[Kind], Awaitable[None]],
    kinds: list[Kind],
    *,
    connections: int,
    seconds: float,
    processes: Callable[[], list[psutil.Process]],
    url: str,
) -> Run:
    latencies: dict[str, list[float]] = {kind.name: [] for kind in kinds}
    watched = processes()
    api_before, postgres_before = cpu_seconds(watched), backend_cpu(url)
    client_before = time.process_time()
    started = time.perf_counter()
    requests = await drive(
        call, kinds, connections=connections, seconds=seconds, latencies=latencies
    )
    elapsed = time.perf_counter() - started
    client_cpu = time.process_time() - client_before
    postgres_after = backend_cpu(url)
    return Run(
        latencies=latencies,
        requests=requests,
        seconds=elapsed,
        api_cpu_seconds=cpu_seconds(watched) - api_before,
        # Every backend that ran, those born during the run too (a pool that grows).
        postgres_cpu_seconds=sum(
            cpu - postgres_before.get(pid, 0.0) for pid, cpu in postgres_after.items()
        ),
        client_cpu_seconds=client_cpu,
    )


async def one_client(
    call: Callable[[Kind], Awaitable[None]], kind: Kind, samples: int
) -> list[float]:
    for _ in range(max(10, samples // 10)):
        await call(kind)
    timings = []
    for _ in range(samples):
        started = time.perf_counter()
        await call(kind)
        timings.append((time.perf_counter() - started) * 1000)
    return timings


# --- The two sides -------------------------------------------------------------------------------


class HttpConnection:
    """One keep-alive HTTP/1.1 connection that sends GETs one at a time and reads answers with a
    ``Content-Length`` (as uvicorn sends them): a load generator that costs its shared cores
    little."""

    def __init__(self, host: str, port: int, headers: dict[str, str]) -> None:
        self.host, self.port = host, port
        self.header_lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    def request(self, path: str, params: dict[str, str]) -> bytes:
        target = f"{path}?{urlencode(params)}" if params else path
        head = f"GET {target} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{self.header_lines}"
        return (head + "\r\n").encode()

    async def send(self, request: bytes) -> tuple[int, bytes]:
        if self.streams is not None:
            try:
                return await self._exchange(self.streams, request)
            except (asyncio.IncompleteReadError, ConnectionError):
                # The server closed the idle connection (uvicorn's keep-alive timeout): again
                # on a new one.
                await self.close()
        self.streams = await asyncio.open_connection(self.host, self.port)
        return await self._exchange(self.streams, request)

    @staticmethod
    async def _exchange(
        streams: tuple[asyncio.StreamReader, asyncio.StreamWriter], request: bytes
    ) -> tuple[int, bytes]:
        reader, writer = streams
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        found = head.lower().find(b"\r\ncontent-length:")
        if found < 0:
            raise RuntimeError(f"HTTP {status} without Content-Length: {head[:200]!r}")
        length = int(head[found + 17 : head.index(b"\r\n", found + 2)])
        return status, await reader.readexactly(length)

    async def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None


def api_caller(
    connections: list[HttpConnection], requests: dict[str, bytes]
) -> Callable[[Kind], Awaitable[None]]:
    """Each request on a free connection of ``connections`` (one per client under load)."""

    async def call(kind: Kind) -> None:
        connection = connections.pop()
        try:
            status, _ = await connection.send(requests[kind.name])
        finally:
            connections.append(connection)
        if status != 200:
            raise RuntimeError(f"{kind.name}: HTTP {status}")

    return call


def sql_caller(reads: Reads) -> Callable[[Kind], Awaitable[None]]:
    async def call(kind: Kind) -> None:
        found, rows = await reads.run(kind.check, lambda tenant: kind.query, TENANT)
        if found != TENANT or not rows:
            raise RuntimeError(f"{kind.name}: the key's check or the query found nothing")

    return call


def serve(url: str, port: int, workers: int, pool_size: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "KEYBUZZ_DATABASE_URL": url,
        "KEYBUZZ_LOG_LEVEL": "WARNING",
        "KEYBUZZ_DB_POOL_SIZE": str(pool_size),
        # One key sends every request: the rate limits are set where they never refuse one (their
        # cost, a lease now and then, stays in the figures).
        **UNMET_RATE_LIMITS,
    }
    command = [sys.executable, "-m", "keybuzz.cli", "serve", "--port", str(port)]
    return subprocess.Popen([*command, "--workers", str(workers)], env=env)


async def wait_ready(connection: HttpConnection) -> None:
    ready = connection.request("/readyz", {})
    while True:
        try:
            status, _ = await connection.send(ready)
            if status == 200:
                return
        except OSError:
            await connection.close()
        await asyncio.sleep(0.2)


# --- Main ----------------------------------------------------------------------------------------


async def prepare(url: str, count: int) -> tuple[list[Kind], str]:
    name = a_buyer_name(url, count)
    async with await psycopg.AsyncConnection.connect(libpq_url(url), autocommit=True) as conn:
        cursor, _ = await deep_cursor(conn, min(count - 60, int(count * 0.9)))
    kinds = [
        Kind("first page", {}),
        Kind("orderStatus=SHIPPED", {"orderStatus": "SHIPPED"}),
        Kind("q=<a buyer's full name>", {"q": name}),
        Kind("deep cursor (90 %)", {"cursor": cursor}),
    ]
    key = await issue_key(url)
    credentials = Credentials(
        bearer_key=key, tenant_header=TENANT, session_token=None, csrf_header=None,
        changes_state=False,
    )  # fmt: skip
    check, check_params = credential_check(credentials)
    for kind in kinds:
        kind.check = Sql(check, check_params)
        # The API reads repeatable parameters as lists.
        params = {k: [v] if k == "orderStatus" else v for k, v in kind.params.items()}
        kind.query = list_sql(TENANT, build_query(OrderListParams.model_validate(params)))
    return kinds, key


async def measure(url: str, count: int, args: argparse.Namespace) -> dict[str, Any]:
    kinds, key = await prepare(url, count)
    workers = args.workers or os.cpu_count() or 1
    port = free_port()
    server = serve(url, port, workers, math.ceil(args.connections / workers))
    headers = {"Authorization": f"Bearer {key}", "X-Tenant-Id": TENANT}
    connections = [HttpConnection("127.0.0.1", port, headers) for _ in range(args.connections)]
    requests = {kind.name: connections[0].request("/api/v1/orders", kind.params) for kind in kinds}
    # As the API's processes connect: the app's role, under row-level security.
    pool = open_read_pool(app_role_url(url), size=args.connections)
    await pool.open()
    try:
        await wait_ready(connections[0])
        api, sql = api_caller(connections, requests), sql_caller(Reads.on_pool(pool))
        sides = {"API": api, "SQL": sql}
        for name, call in sides.items():
            print(f"{name}: warming up, {args.warmup} s…", flush=True)
            await drive(call, kinds, connections=args.connections, seconds=args.warmup)
        runs: dict[str, list[Run]] = {"API": [], "SQL": []}
        # API, SQL, SQL, API, round after round: what drifts during the measure (the machine's
        # other work, caches) weighs on both sides alike.
        slice_seconds = args.seconds / (2 * args.rounds)
        print(
            f"{args.rounds} rounds of API, SQL, SQL, API: {args.connections} clients, "
            f"{slice_seconds:g} s a slice…",
            flush=True,
        )
        for name in ("API", "SQL", "SQL", "API") * args.rounds:
            watched = (lambda: api_processes(server)) if name == "API" else list
            part = await load(
                sides[name], kinds, connections=args.connections,
                seconds=slice_seconds, processes=watched, url=url,
            )  # fmt: skip
            runs[name].append(part)
        api_run, sql_run = (sum(runs[name][1:], runs[name][0]) for name in ("API", "SQL"))
        print(f"One client, {args.samples} requests of each kind…", flush=True)
        single = {}
        for kind in kinds:
            api_alone = await one_client(api, kind, args.samples)
            sql_alone = await one_client(sql, kind, args.samples)
            single[kind.name] = {
                "api_p50_ms": round(statistics.median(api_alone), 2),
                "api_p99_ms": round(percentile(api_alone, 99), 2),
                "sql_p50_ms": round(statistics.median(sql_alone), 2),
                "sql_p99_ms": round(percentile(sql_alone, 99), 2),
                "p99_ratio": round(percentile(api_alone, 99) / percentile(sql_alone, 99), 2),
            }
    finally:
        for connection in connections:
            await connection.close()
        await pool.close()
        server.terminate()
        server.wait(timeout=60)
    api_summary, sql_summary = api_run.summary(), sql_run.summary()
    return {
        "orders": count,
        "connections": args.connections,
        "seconds": args.seconds,
        "rounds": args.rounds,
        "warmup_seconds": args.warmup,
        "api_workers": workers,
        "cores": os.cpu_count(),
        "api": api_summary,
        "sql": sql_summary,
        "throughput_ratio": round(api_summary["requests_per_s"] / sql_summary["requests_per_s"], 2),
        "single_client": single,
    }


def report(result: dict[str, Any]) -> None:
    api, sql = result["api"], result["sql"]
    print()
    print(
        f"{result['orders']:,} orders, {result['connections']} connections, "
        f"{result['seconds']} s, {result['api_workers']} API processes, "
        f"{result['cores']} cores shared by client, API and PostgreSQL"
    )
    print(f"{'under load':<26} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    for label, run in (("API", api), ("SQL (same statements)", sql)):
        print(
            f"{label:<26} {run['requests_per_s']:>8} {run['p50_ms']:>8} "
            f"{run['p95_ms']:>8} {run['p99_ms']:>8}"
        )
    print(f"API / SQL throughput: {result['throughput_ratio']} (target >= 0.8)")
    print(
        f"CPU per request: API processes {api['api_cpu_ms_per_request']} ms, PostgreSQL "
        f"{api['postgres_cpu_ms_per_request']} ms, HTTP clients "
        f"{api['client_cpu_ms_per_request']} ms (SQL run: PostgreSQL "
        f"{sql['postgres_cpu_ms_per_request']} ms, psycopg clients "
        f"{sql['client_cpu_ms_per_request']} ms)"
    )
    print()
    print(f"{'by kind, under load':<26} {'API p50/p95/p99 ms':>24} {'SQL p50/p95/p99 ms':>24}")
    for kind, numbers in api["by_kind"].items():
        other = sql["by_kind"][kind]
        print(
            f"{kind:<26} {numbers['p50_ms']:>8}{numbers['p95_ms']:>8}{numbers['p99_ms']:>8} "
            f"{other['p50_ms']:>8}{other['p95_ms']:>8}{other['p99_ms']:>8}"
        )
    print()
    print(f"{'one client':<26} {'API p50':>8} {'API p99':>8} {'SQL p50':>8} {'SQL p99':>8} ratio")
    for kind, row in result["single_client"].items():
        print(
            f"{kind:<26} {row['api_p50_ms']:>8} {row['api_p99_ms']:>8} {row['sql_p50_ms']:>8} "
            f"{row['sql_p99_ms']:>8} {row['p99_ratio']:>5} (target <= 2)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=None, help="Default: the cores.")
    parser.add_argument(
        "--warmup", type=float, default=10.0, help="Seconds of each side's load not measured."
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="Rounds of API, SQL, SQL, API slices."
    )
    parser.add_argument("--samples", type=int, default=300, help="One client, per kind.")
    parser.add_argument(
        "--database", default=None, help="Keep the seeded database under this name (reused)."
    )
    args = parser.parse_args()
    server = server_url()
    if args.database:
        name = args.database
        url = make_url(server).set(database=name).render_as_string(hide_password=False)
        seeded = seeded_orders(server, name)
        if seeded is None:
            with psycopg.connect(libpq_url(server), autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
    else:
        name, url = scratch_url(server)
        seeded = None
    try:
        migrate(url)
        if seeded is None:
            print(f"COPY of {args.orders:,} orders into tenant {TENANT}…", flush=True)
            asyncio.run(fill(url, args.orders))
        elif seeded != args.orders:
            raise SystemExit(f"{name} holds {seeded:,} orders, not {args.orders:,}: drop it first")
        result = uvloop.run(measure(url, args.orders, args))
    finally:
        if not args.database:
            drop_database(server, name)
    report(result)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench_api.json").write_text(json.dumps(result, indent=2))


def seeded_orders(server: str, name: str) -> int | None:
    """The orders of the benchmark's tenant in database ``name``; ``None`` if there is none."""
    with psycopg.connect(libpq_url(server), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            url = make_url(server).set(database=name).render_as_string(hide_password=False)
        else:
            return None
    with psycopg.connect(libpq_url(url)) as conn:
        try:
            row = conn.execute(
                "SELECT count(*) FROM orders WHERE tenant_id = %s", (TENANT,)
            ).fetchone()
        except psycopg.errors.UndefinedTable:
            return None
    return int(row[0]) if row and row[0] else None


if __name__ == "__main__":
    main()
