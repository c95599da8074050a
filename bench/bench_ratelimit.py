"""Noisy neighbour benchmark: does one tenant hammering the API raise another tenant's latency?

    python bench/bench_ratelimit.py [--orders 2000] [--seconds 60] [--quiet-rate 20]
                                    [--noisy-connections 16] [--noisy-keys 1] [--limits on|off]

It fills two tenants with N orders each, serves the API with ``keybuzz serve`` over loopback
(default limits: ``KEYBUZZ_RATE_LIMIT_*`` as configured, else the defaults), and times the quiet
tenant's steady requests (``GET /api/v1/orders?limit=20`` at ``--quiet-rate`` per second, one
connection): first alone, then while the noisy tenant hammers the same route as fast as
``--noisy-connections`` connections allow (on ``--noisy-keys`` API keys, ignoring
``Retry-After``), from a process of its own. The quiet tenant stays within its limits: its
requests take turns over as many keys (several agents) as keep each key at half its rate. It
prints the quiet tenant's p50/p99 alone and beside the noisy one, their ratio (target: the noisy
tenant never raises another tenant's p99 by more than 2x), how many of the noisy tenant's
requests were answered 429, and the CPU time of the API processes and of the noisy client in
each phase. ``--limits off`` runs the same with ``KEYBUZZ_RATE_LIMIT_ENABLED=false``, to see
what the limits buy. Uses the machine's PostgreSQL on 127.0.0.1:5432 when it answers (else the
embedded server) in a scratch database that it drops at the end.

A quick run (proves the script works, figures meaningless on a busy machine):

    python bench/bench_ratelimit.py --orders 200 --seconds 4
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_api import api_processes, backend_cpu
from bench.bench_orders import (
    RESULTS,
    drop_database,
    free_port,
    percentile,
    scratch_url,
    server_url,
    wait_ready,
)
from bench.orders_data import generate
from keybuzz.config import Settings
from keybuzz.db import create_engine, create_sessionmaker, migrate, transaction
from keybuzz.orders.upsert import upsert_orders
from keybuzz.tenants.models import TenantId
from keybuzz.tenants.service import create_tenant, issue_api_key

NOISY = TenantId("noisy-001")
QUIET = TenantId("quiet-002")
ROUTE = "/api/v1/orders"
PARAMS = {"limit": "20"}
BATCH = 5_000


async def seed(url: str, orders: int, key_counts: dict[TenantId, int]) -> dict[str, list[str]]:
    """Both tenants with ``orders`` orders each; their API keys."""
    engine = create_engine(url, pool_size=1)
    sessionmaker = create_sessionmaker(engine)
    keys: dict[str, list[str]] = {}
    for tenant in (NOISY, QUIET):
        async with transaction(sessionmaker) as session:
            keys[tenant] = [(await create_tenant(session, tenant, None)).api_key]
            for _ in range(key_counts[tenant] - 1):
                keys[tenant].append(await issue_api_key(session, tenant))
        records = list(generate(orders, seed=len(keys)))
        for start in range(0, len(records), BATCH):
            async with transaction(sessionmaker) as session:
                await upsert_orders(session, tenant, records[start : start + BATCH])
    await engine.dispose()
    return keys


def headers(tenant: str, key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "X-Tenant-Id": tenant}


async def steady(base_url: str, keys: list[str], rate: float, seconds: float) -> list[float]:
    """The quiet tenant: one request every 1/rate s on one connection, its keys taking turns;
    milliseconds each."""
    timings: list[float] = []
    turns = itertools.cycle([headers(QUIET, key) for key in keys])
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        for _ in range(5):  # warm the connection and the server's lease
            (await client.get(ROUTE, params=PARAMS, headers=next(turns))).raise_for_status()
        period = 1 / rate
        started = time.perf_counter()
        next_at = started
        while next_at - started < seconds:
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
            sent = time.perf_counter()
            response = await client.get(ROUTE, params=PARAMS, headers=next(turns))
            timings.append((time.perf_counter() - sent) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"the quiet tenant got {response.status_code}: {response.text}")
            next_at += period
    return timings


async def hammer(base_url: str, keys: list[str], connections: int, seconds: float) -> Counter[int]:
    """The noisy tenant: ``connections`` clients asking back to back (ignoring
    ``Retry-After``), spread over its keys."""
    statuses: Counter[int] = Counter()
    limits = httpx.Limits(max_connections=connections)
    async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as client:
        deadline = time.perf_counter() + seconds

        async def one(key: str) -> None:
            while time.perf_counter() < deadline:
                response = await client.get(ROUTE, params=PARAMS, headers=headers(NOISY, key))
                statuses[response.status_code] += 1

        await asyncio.gather(*(one(keys[n % len(keys)]) for n in range(connections)))
    return statuses


def start_hammer(
    base_url: str, keys: list[str], connections: int, seconds: float
) -> subprocess.Popen[str]:
    command = [
        *(sys.executable, __file__, "--hammer", base_url, ",".join(keys)),
        *(str(connections), str(seconds)),
    ]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)


def quiet_key_count(rate: float) -> int:
    """Keys enough that the quiet tenant's requests keep each at half its rate limit: the
    quiet tenant is within its limits (several agents), which ``main`` checks for the tenant."""
    return max(1, math.ceil(rate / (Settings().rate_limit_key_per_second / 2)))


def cpu_by_process(processes: list[psutil.Process]) -> dict[int, float]:
    found = {}
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        found[process.pid] = times.user + times.system
    return found


class ServerCpu:
    """CPU seconds the API processes and this database's PostgreSQL backends spend per phase
    (a backend that ends within a phase is not counted)."""

    def __init__(self, server: subprocess.Popen[bytes], url: str) -> None:
        self.api = api_processes(server)
        self.url = url
        self.before = self._now()

    def _now(self) -> tuple[dict[int, float], dict[int, float]]:
        return cpu_by_process(self.api), backend_cpu(self.url)

    def phase(self) -> dict[str, float]:
        now = self._now()
        spent = {
            side: round(sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items()), 2)
            for side, before, after in zip(("api", "postgres"), self.before, now, strict=True)
        }
        self.before = now
        return spent


def figures(timings: list[float]) -> dict[str, float]:
    return {
        "requests": len(timings),
        "p50_ms": round(statistics.median(timings), 2),
        "p99_ms": round(percentile(timings, 99), 2),
    }


async def measure(url: str, args: argparse.Namespace, keys: dict[str, str]) -> dict[str, Any]:
    port = free_port()
    env = {**os.environ, "KEYBUZZ_DATABASE_URL": url, "KEYBUZZ_LOG_LEVEL": "WARNING"}
    if args.limits == "off":
        env["KEYBUZZ_RATE_LIMIT_ENABLED"] = "false"
    server = subprocess.Popen(
        [sys.executable, "-m", "keybuzz.cli", "serve", "--port", str(port)], env=env
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base_url) as client:
            await wait_ready(client)
        quiet = keys[QUIET]
        print(
            f"quiet tenant alone, {args.quiet_rate}/s on {len(quiet)} keys "
            f"for {args.seconds} s ...",
            flush=True,
        )
        cpu = ServerCpu(server, url)
        alone = await steady(base_url, quiet, args.quiet_rate, args.seconds)
        cpu_alone = cpu.phase()
        print(
            f"with the noisy tenant on {args.noisy_connections} connections, "
            f"{len(keys[NOISY])} keys ...",
            flush=True,
        )
        noisy = start_hammer(base_url, keys[NOISY], args.noisy_connections, args.seconds + 2)
        await asyncio.sleep(1)  # the hammer at full speed before the quiet tenant is timed
        beside = await steady(base_url, quiet, args.quiet_rate, args.seconds)
        cpu_beside = cpu.phase()
        output, _ = noisy.communicate()
        hammered = json.loads(output)
        statuses = {int(status): count for status, count in hammered["statuses"].items()}
    finally:
        server.terminate()
        server.wait(timeout=30)
    result_alone, result_beside = figures(alone), figures(beside)
    return {
        "orders_per_tenant": args.orders,
        "limits": args.limits,
        "quiet_alone": result_alone,
        "quiet_with_noisy": result_beside,
        "p99_ratio": round(result_beside["p99_ms"] / result_alone["p99_ms"], 2),
        "noisy_statuses": statuses,
        "quiet_keys": len(keys[QUIET]),
        "noisy_keys": len(keys[NOISY]),
        "server_cpu_seconds": {"alone": cpu_alone, "beside": cpu_beside},
        "noisy_client_cpu_seconds": round(hammered["cpu_seconds"], 2),
    }


def report(result: dict[str, Any]) -> None:
    alone, beside = result["quiet_alone"], result["quiet_with_noisy"]
    statuses = result["noisy_statuses"]
    total = sum(statuses.values())
    refused = statuses.get(429, 0)
    print()
    print(
        f"rate limits {result['limits']}, {result['orders_per_tenant']:,} orders per tenant "
        f"(machine: {os.cpu_count()} cores; client, API and PostgreSQL on the same machine)"
    )
    print(f"{'quiet tenant':<24} {'requests':>9} {'p50 ms':>8} {'p99 ms':>8}")
    print(f"{'alone':<24} {alone['requests']:>9} {alone['p50_ms']:>8} {alone['p99_ms']:>8}")
    print(
        f"{'beside the noisy tenant':<24} {beside['requests']:>9} {beside['p50_ms']:>8} "
        f"{beside['p99_ms']:>8}"
    )
    verdict = "met" if result["p99_ratio"] <= 2 else "NOT met"
    print(f"p99 ratio: {result['p99_ratio']} (target <= 2: {verdict})")
    share = refused / total if total else 0.0
    print(
        f"noisy tenant ({result['noisy_keys']} keys): {total:,} requests, {refused:,} answered "
        f"429 ({share:.0%}); {statuses}"
    )
    alone_cpu, beside_cpu = (result["server_cpu_seconds"][phase] for phase in ("alone", "beside"))
    print(
        f"CPU s, API / PostgreSQL: {alone_cpu['api']} / {alone_cpu['postgres']} alone, "
        f"{beside_cpu['api']} / {beside_cpu['postgres']} beside the noisy tenant (whose client "
        f"took {result['noisy_client_cpu_seconds']}); quiet tenant on {result['quiet_keys']} keys"
    )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--hammer":
        base_url, keys, connections, seconds = sys.argv[2:6]
        statuses = asyncio.run(hammer(base_url, keys.split(","), int(connections), float(seconds)))
        print(json.dumps({"statuses": statuses, "cpu_seconds": time.process_time()}))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=2_000, help="orders of each tenant")
    parser.add_argument("--seconds", type=float, default=60, help="length of each phase")
    parser.add_argument("--quiet-rate", type=float, default=20, help="quiet requests per second")
    parser.add_argument("--noisy-connections", type=int, default=16)
    parser.add_argument("--noisy-keys", type=int, default=1, help="API keys of the noisy tenant")
    parser.add_argument("--limits", choices=("on", "off"), default="on")
    args = parser.parse_args()
    if args.quiet_rate >= Settings().rate_limit_tenant_per_second:
        parser.error("--quiet-rate must stay under the tenant's rate limit")
    key_counts = {NOISY: args.noisy_keys, QUIET: quiet_key_count(args.quiet_rate)}
    server = server_url()
    name, url = scratch_url(server)
    try:
        migrate(url)
        keys = asyncio.run(seed(url, args.orders, key_counts))
        result = asyncio.run(measure(url, args, keys))
    finally:
        drop_database(server, name)
    report(result)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench_ratelimit.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
