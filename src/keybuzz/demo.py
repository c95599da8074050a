"""`keybuzz demo`: the whole product on one machine, with Amazon played by the simulator.

It starts the SP-API simulator in-process (a seller with a few hundred orders over 90 days),
points the service at it (only base URLs change), serves the API with a job worker, and then,
through the public API exactly as a seller's browser and the helpdesk would: creates the demo
tenant, connects its Amazon account (OAuth consent), and starts a 90-day backfill.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import httpx
import uvicorn
from rich.console import Console
from sqlalchemy.ext.asyncio import AsyncSession

from keybuzz.app import create_app
from keybuzz.config import Settings
from keybuzz.db import migrate, resolve_database_url, run_in_transaction
from keybuzz.marketplaces.oauth import CALLBACK_PATH
from keybuzz.simulator.server import SimulatorServer
from keybuzz.simulator.settings import SimulatorSettings
from keybuzz.tenants import service as tenants
from keybuzz.tenants.models import TenantId

logger = logging.getLogger(__name__)
console = Console(stderr=True)

DEMO_TENANT = TenantId("ecomlg-001")
READY_TIMEOUT = 60.0


@dataclass(frozen=True)
class DemoOptions:
    host: str
    port: int
    orders: int
    days: int
    rate_scale: float


def demo_settings(settings: Settings, simulator_url: str, options: DemoOptions) -> Settings:
    """The service's settings, pointed at the simulator (only base URLs change)."""
    public_url = f"http://{options.host}:{options.port}"
    return settings.model_copy(
        update={
            "spapi_endpoint": simulator_url,
            "lwa_token_url": f"{simulator_url}/auth/o2/token",
            "seller_central_url": simulator_url,
            "public_url": public_url,
            "oauth_redirect_uri": None,
            "run_worker": True,
        }
    )


def run_demo(settings: Settings, options: DemoOptions) -> None:
    public_url = f"http://{options.host}:{options.port}"
    simulator_settings = SimulatorSettings(
        orders=options.orders,
        days=options.days,
        rate_scale=options.rate_scale,
        redirect_uris=[public_url + CALLBACK_PATH],
        report_generation_seconds=2,
    )
    with SimulatorServer(simulator_settings) as simulator:
        settings = demo_settings(settings, simulator.base_url, options)
        url = resolve_database_url(settings)
        migrate(url)
        api_key = run_in_transaction(settings, _demo_key, apply_migrations=False)
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(settings, database_url=url),
                host=options.host,
                port=options.port,
                log_level=settings.log_level.lower(),
            )
        )
        seeding = threading.Thread(
            target=_connect_and_backfill,
            args=(public_url, api_key, simulator.base_url),
            name="demo-seed",
            daemon=True,
        )
        seeding.start()
        server.run()


async def _demo_key(session: AsyncSession) -> str:
    """The demo tenant (created on first run) and a new API key for it."""
    existing = {tenant.id for tenant in await tenants.list_tenants(session)}
    if DEMO_TENANT in existing:
        return await tenants.issue_api_key(session, DEMO_TENANT)
    created = await tenants.create_tenant(session, DEMO_TENANT, "Ecom LG (demo)")
    return created.api_key


def _wait_until_ready(client: httpx.Client) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        try:
            if client.get("/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the demo service did not become ready")


def _connect_and_backfill(public_url: str, api_key: str, simulator_url: str) -> None:
    headers = {"Authorization": f"Bearer {api_key}", "X-Tenant-Id": DEMO_TENANT}
    try:
        with httpx.Client(base_url=public_url, headers=headers, timeout=30) as client:
            _wait_until_ready(client)
            connections = client.get("/api/v1/marketplaces").json()["items"]
            if not any(c["status"] == "CONNECTED" for c in connections):
                _connect_amazon(client)
            backfill = client.post("/api/v1/orders/backfill", json={"days": 90})
            backfill.raise_for_status()
        _print_welcome(public_url, api_key, simulator_url)
    except Exception:
        logger.exception("the demo could not connect Amazon and start the backfill")


def _connect_amazon(client: httpx.Client) -> None:
    """What a seller does in the browser: start, consent on Amazon, come back."""
    started = client.post("/api/v1/marketplaces/amazon/oauth/start", json={"region": "EU"})
    started.raise_for_status()
    consent = client.get(started.json()["authUrl"], follow_redirects=False)
    callback = consent.headers["location"]
    landed = client.get(callback, follow_redirects=False)
    if landed.status_code != 303:
        raise RuntimeError(f"the OAuth callback failed with {landed.status_code}")


def _print_welcome(public_url: str, api_key: str, simulator_url: str) -> None:
    console.print(
        f"""
[bold green]KeyBuzz Orders demo is running[/bold green] on {public_url}
  Amazon is played by the SP-API simulator at {simulator_url}
  Tenant [bold]{DEMO_TENANT}[/bold] is connected; its 90-day backfill is running.

  API key (new at each start):  {api_key}

  export KB_KEY={api_key}
  curl -H "Authorization: Bearer $KB_KEY" -H "X-Tenant-Id: {DEMO_TENANT}" \\
       "{public_url}/api/v1/orders?limit=5"
  curl -H "Authorization: Bearer $KB_KEY" -H "X-Tenant-Id: {DEMO_TENANT}" \\
       "{public_url}/api/v1/orders/backfill"

  API reference: {public_url}/docs     Stop: Ctrl+C
""",
        soft_wrap=True,
    )
