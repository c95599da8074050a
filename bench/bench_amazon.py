"""SP-API client benchmark: list every order with its items as fast as Amazon's limits allow.

    python bench/bench_amazon.py [--sizes 2000,20000] [--rate-scale 200] [--no-peer]
                                 [--busy-loops N]

The simulator runs in a child process with every Amazon rate multiplied by ``--rate-scale``
(bursts unchanged). For each size N, three listings of the same N orders (90 days), each by a
seller of its own so that every run starts with full buckets:

- keybuzz, Orders v2026: searchOrders pages, items inline;
- keybuzz, Orders v0: getOrders pages (with a bulk RDT) and one getOrderItems per order;
- python-amazon-sp-api (the peer), Orders v0: the same getOrders and getOrderItems calls, with
  its ``load_all_pages(use_rate_limit_header=True)`` and ``throttle_retry`` helpers (their
  5-second retry delay scaled by the same factor).

Each is printed beside the lower bound for its calls from the rate table (spapi.md, "Numbers
that bound a 90-day backfill": ``T = max(0, M - B) / r`` per operation, operations in parallel),
with their ratio (target <= 1.10) and the 429s the simulator answered (target 0 for keybuzz).
``--busy-loops N`` runs N processes spinning on a core meanwhile (one per core: a loaded
machine, where requests reach the simulator late and bunched). ``--save`` also writes the
figures to ``bench/results/amazon.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import sys
import time
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from keybuzz.amazon.client import SpApiClient
from keybuzz.amazon.listing import ListingQuery
from keybuzz.amazon.operations import GET_ORDER_ITEMS, GET_ORDERS, SEARCH_ORDERS, Operation
from keybuzz.amazon.regions import Region
from keybuzz.amazon.registry import ConnectionRegistry
from keybuzz.amazon.windows import Window
from keybuzz.config import Settings
from keybuzz.runtime import spapi_config
from keybuzz.simulator import SimulatorServer, SimulatorSettings

RESULTS = Path(__file__).resolve().parent / "results" / "amazon.json"
FR = "A13V1IB3VIYZZH"
PEER_DEFAULT_DELAY = 5.0


def spin() -> None:
    """Child process: keep one core busy until killed."""
    while True:
        pass


def serve(rate_scale: float, pipe: Connection) -> None:
    """Child process: the simulator, until the parent says stop."""
    settings = SimulatorSettings(orders=0, rate_scale=rate_scale, report_generation_seconds=0)
    with SimulatorServer(settings) as server:
        pipe.send(server.base_url)
        pipe.recv()


def lower_bound(calls: dict[Operation, int], rate_scale: float) -> float:
    return max(
        max(0, count - op.plan.burst) / (op.plan.rate * rate_scale) for op, count in calls.items()
    )


class Simulator:
    """The child's inspection API (``/_sim``) from the parent."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = httpx.Client(base_url=base_url, timeout=60)

    def seller(self, name: str, orders: int) -> str:
        body = {"seller_id": name, "orders": orders, "days": 90, "seed": 7, "marketplaces": ["FR"]}
        self.http.post("/_sim/sellers", json=body).raise_for_status()
        response = self.http.post(f"/_sim/sellers/{name}/authorize")
        return str(response.json()["refresh_token"])

    def throttled(self) -> int:
        counters = self.http.get("/_sim/counters").json()
        return sum(int(entry["statuses"].get("429", 0)) for entry in counters.values())

    def reset(self) -> None:
        self.http.delete("/_sim/counters").raise_for_status()


async def keybuzz_listing(base_url: str, refresh_token: str, api: str) -> dict[str, Any]:
    config = spapi_config(
        Settings(  # type: ignore[call-arg]
            _env_file=None,
            spapi_endpoint=base_url,
            lwa_token_url=base_url + "/auth/o2/token",
        )
    )
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=200)) as http:
        client = SpApiClient(
            http,
            config,
            region=Region.EU,
            refresh_token=SecretStr(refresh_token),
            connection_key=f"bench-{api}",
            registry=ConnectionRegistry(),
        )
        await client.check_credentials()
        orders = items = pages = 0
        started = time.perf_counter()
        query = ListingQuery(
            marketplace_ids=[FR],
            window=Window(created_after=datetime.now(UTC) - timedelta(days=91)),
        )
        async for page in client.list_order_records(query, api=api):  # type: ignore[arg-type]
            pages += 1
            orders += len(page.records)
            items += sum(len(record.items or ()) for record in page.records)
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "pages": pages, "orders": orders, "items": items}


def peer_listing(base_url: str, refresh_token: str, rate_scale: float) -> dict[str, Any]:
    from sp_api.api import Orders
    from sp_api.auth import AccessTokenClient
    from sp_api.base import Marketplaces
    from sp_api.util import load_all_pages, throttle_retry

    simulator_lwa = type(
        "SimulatorLwa",
        (AccessTokenClient,),
        {"scheme": "http://", "host": base_url.removeprefix("http://")},
    )
    defaults = SimulatorSettings()
    client = Orders(
        marketplace=Marketplaces.FR,
        refresh_token=refresh_token,
        credentials={
            "lwa_app_id": defaults.client_id,
            "lwa_client_secret": defaults.client_secret.get_secret_value(),
        },
        auth_token_client_class=simulator_lwa,
    )
    client.endpoint = base_url
    delay = PEER_DEFAULT_DELAY / rate_scale

    @load_all_pages(use_rate_limit_header=True)
    @throttle_retry(delay=delay)
    def order_pages(**kwargs: Any) -> Any:
        return client.get_orders(**kwargs)

    @throttle_retry(delay=delay)
    def order_items(order_id: str) -> Any:
        return client.get_order_items(order_id)

    created_after = (datetime.now(UTC) - timedelta(days=91)).strftime("%Y-%m-%dT%H:%M:%SZ")
    orders = items = pages = 0
    started = time.perf_counter()
    try:
        for page in order_pages(CreatedAfter=created_after, MaxResultsPerPage=100):
            pages += 1
            for order in page.payload["Orders"]:
                orders += 1
                items += len(order_items(order["AmazonOrderId"]).payload["OrderItems"])
    finally:
        client.close()
    return {
        "seconds": time.perf_counter() - started,
        "pages": pages,
        "orders": orders,
        "items": items,
    }


def run(size: int, rate_scale: float, peer: bool, simulator: Simulator) -> list[dict[str, Any]]:
    rows = []
    listings: list[tuple[str, str]] = [("keybuzz", "v2026"), ("keybuzz", "v0")]
    if peer:
        listings.append(("python-amazon-sp-api", "v0"))
    for client, api in listings:
        token = simulator.seller(f"ABENCH{size}{client[:2].upper()}{api.upper()}", size)
        simulator.reset()
        if client == "keybuzz":
            figures = asyncio.run(keybuzz_listing(simulator.base_url, token, api))
        else:
            figures = peer_listing(simulator.base_url, token, rate_scale)
        if api == "v2026":
            calls = {SEARCH_ORDERS: figures["pages"]}
        else:
            calls = {GET_ORDERS: figures["pages"], GET_ORDER_ITEMS: figures["orders"]}
        bound = lower_bound(calls, rate_scale)
        row = {
            "size": size,
            "client": client,
            "api": api,
            **figures,
            "lower_bound_seconds": round(bound, 2),
            "ratio": round(figures["seconds"] / bound, 3) if bound > 0 else None,
            "throttled_429": simulator.throttled(),
        }
        row["seconds"] = round(figures["seconds"], 2)
        rows.append(row)
        print(describe(row), flush=True)
    return rows


def describe(row: dict[str, Any]) -> str:
    ratio = f"{row['ratio']:.3f}" if row["ratio"] is not None else "— (all in burst)"
    return (
        f"N={row['size']:>6,}  {row['client']:<21} {row['api']:<5}  "
        f"{row['seconds']:>8.2f} s  bound {row['lower_bound_seconds']:>8.2f} s  "
        f"ratio {ratio:<16}  429s {row['throttled_429']:>5}  "
        f"({row['pages']} pages, {row['orders']:,} orders, {row['items']:,} items)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="2000,20000")
    parser.add_argument("--rate-scale", type=float, default=200.0)
    parser.add_argument("--no-peer", action="store_true", help="skip python-amazon-sp-api")
    parser.add_argument("--save", action="store_true", help=f"write the figures to {RESULTS}")
    parser.add_argument(
        "--busy-loops", type=int, default=0, help="processes keeping a core busy meanwhile"
    )
    args = parser.parse_args()

    context = multiprocessing.get_context("spawn")
    spinners = [context.Process(target=spin, daemon=True) for _ in range(args.busy_loops)]
    parent, child = context.Pipe()
    process = context.Process(target=serve, args=(args.rate_scale, child), daemon=True)
    process.start()
    simulator = Simulator(parent.recv())
    print(
        f"simulator at {simulator.base_url} (own process), rates x{args.rate_scale:g}, "
        f"{args.busy_loops} busy loop(s) on {multiprocessing.cpu_count()} core(s), "
        f"python {sys.version.split()[0]}",
        flush=True,
    )
    rows: list[dict[str, Any]] = []
    for spinner in spinners:
        spinner.start()
    try:
        for size in (int(s) for s in args.sizes.split(",")):
            rows += run(size, args.rate_scale, not args.no_peer, simulator)
    finally:
        for spinner in spinners:
            spinner.terminate()
        parent.send("stop")
        process.join(30)
    if args.save:
        RESULTS.parent.mkdir(exist_ok=True)
        document = {"rate_scale": args.rate_scale, "busy_loops": args.busy_loops, "runs": rows}
        RESULTS.write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    main()
