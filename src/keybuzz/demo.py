"""`keybuzz demo`: the whole product on one machine, with Amazon played by the simulator.

It starts the SP-API simulator in-process (a seller with a few thousand orders over 90 days in
France, Germany, Spain and Italy), points the service at it (only base URLs change), serves the
API and the Orders page with a job worker, creates the demo tenant if it is missing and prints a
new API key and the page's address. The seller then does what a seller does: sign in, "Connect
Amazon" (the simulator's consent), start the import. With ``auto``, the demo does those steps
itself through the public API, as the seller's browser would.

Started again on the same data, it keeps the tenant, its orders and its Amazon connection: the
new simulator honours the authorization the seller gave the last one, as Amazon would.
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
from keybuzz.secrets import (
    AmazonSpapiSecret,
    MissingSecret,
    SecretStoreError,
    open_secret_backend,
    read_amazon_spapi,
)
from keybuzz.simulator.server import SimulatorServer
from keybuzz.simulator.settings import SimulatorSettings
from keybuzz.tenants import service as tenants
from keybuzz.tenants.models import TenantId

logger = logging.getLogger(__name__)
console = Console(stderr=True)

DEMO_TENANT = TenantId("ecomlg-001")
DEMO_MARKETPLACES = ("A13V1IB3VIYZZH", "A1PA6795UKMFR9", "A1RKKUPIHCS9HS", "APJ6JRA9NG5V4")
"""Amazon.fr, .de, .es and .it."""
READY_TIMEOUT = 60.0
REPORT_GENERATION_SECONDS = 2.0


@dataclass(frozen=True)
class DemoOptions:
    host: str
    port: int
    orders: int
    days: int
    rate_scale: float
    auto: bool = False


@dataclass(frozen=True)
class DemoStart:
    api_key: str
    authorization: AmazonSpapiSecret | None
    """The Amazon authorization the tenant holds from an earlier run, if any."""


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


def simulator_settings(options: DemoOptions) -> SimulatorSettings:
    return SimulatorSettings(
        orders=options.orders,
        days=options.days,
        rate_scale=options.rate_scale,
        marketplaces=list(DEMO_MARKETPLACES),
        redirect_uris=[f"http://{options.host}:{options.port}{CALLBACK_PATH}"],
        report_generation_seconds=REPORT_GENERATION_SECONDS,
    )


def run_demo(settings: Settings, options: DemoOptions) -> None:
    public_url = f"http://{options.host}:{options.port}"
    with SimulatorServer(simulator_settings(options)) as simulator:
        settings = demo_settings(settings, simulator.base_url, options)
        url = resolve_database_url(settings)
        migrate(url)
        started = run_in_transaction(
            settings, lambda session: _demo_start(session, settings), apply_migrations=False
        )
        if started.authorization is not None:
            _amazon_remembers(simulator, started.authorization)
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(settings, database_url=url),
                host=options.host,
                port=options.port,
                log_level=settings.log_level.lower(),
            )
        )
        welcome = threading.Thread(
            target=_welcome,
            args=(public_url, started.api_key, simulator, options),
            name="demo-welcome",
            daemon=True,
        )
        welcome.start()
        server.run()


async def _demo_start(session: AsyncSession, settings: Settings) -> DemoStart:
    """The demo tenant (created on first run), a new API key for it, and the Amazon
    authorization it holds from an earlier run."""
    existing = {tenant.id for tenant in await tenants.list_tenants(session)}
    if DEMO_TENANT not in existing:
        created = await tenants.create_tenant(session, DEMO_TENANT, "Ecom LG (demo)")
        return DemoStart(created.api_key, None)
    api_key = await tenants.issue_api_key(session, DEMO_TENANT)
    return DemoStart(api_key, await _stored_authorization(session, settings))


async def _stored_authorization(
    session: AsyncSession, settings: Settings
) -> AmazonSpapiSecret | None:
    backend = open_secret_backend(settings)
    try:
        found = await read_amazon_spapi(backend.store(session), DEMO_TENANT)
    except SecretStoreError:
        return None  # unreadable: the page will say to reconnect
    finally:
        await backend.aclose()
    return None if isinstance(found, MissingSecret) else found.value


def _amazon_remembers(simulator: SimulatorServer, authorization: AmazonSpapiSecret) -> None:
    seller_id = authorization.selling_partner_id
    if seller_id in simulator.simulator.sellers:
        refresh_token = authorization.refresh_token.get_secret_value()
        simulator.simulator.restore_authorization(seller_id, refresh_token)


def _welcome(
    public_url: str, api_key: str, simulator: SimulatorServer, options: DemoOptions
) -> None:
    """Once the service answers: the seller's steps done (``auto``), then the welcome."""
    headers = {"Authorization": f"Bearer {api_key}", "X-Tenant-Id": DEMO_TENANT}
    try:
        with httpx.Client(base_url=public_url, headers=headers, timeout=30) as client:
            _wait_until_ready(client)
            if options.auto:
                _connect_and_backfill(client, options.days)
        _print_welcome(public_url, api_key, simulator, options)
    except Exception:
        logger.exception("the demo could not get ready")


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


def _connect_and_backfill(client: httpx.Client, days: int) -> None:
    connections = client.get("/api/v1/marketplaces").json()["items"]
    if not any(c["status"] == "CONNECTED" for c in connections):
        _connect_amazon(client)
    backfill = client.post("/api/v1/orders/backfill", json={"days": days})
    backfill.raise_for_status()


def _connect_amazon(client: httpx.Client) -> None:
    """What a seller does in the browser: start, consent on Amazon, come back."""
    started = client.post("/api/v1/marketplaces/amazon/oauth/start", json={"region": "EU"})
    started.raise_for_status()
    consent = client.get(started.json()["authUrl"], follow_redirects=False)
    callback = consent.headers["location"]
    landed = client.get(callback, follow_redirects=False)
    if landed.status_code != 303:
        raise RuntimeError(f"the OAuth callback failed with {landed.status_code}")


def _print_welcome(
    public_url: str, api_key: str, simulator: SimulatorServer, options: DemoOptions
) -> None:
    seller = simulator.settings
    if options.auto:
        next_steps = (
            f"Tenant [bold]{DEMO_TENANT}[/bold] is connected; its {options.days}-day import is "
            "running: watch it on the page."
        )
    else:
        next_steps = (
            'Sign in with the key, click [bold]"Connecter Amazon"[/bold] (Connect Amazon: the '
            "simulator's consent sends you back),\n  then [bold]\"Lancer l'import\"[/bold] "
            "(start the import). `keybuzz demo --auto` does both itself."
        )
    console.print(
        f"""
[bold green]KeyBuzz Orders demo is running[/bold green]

  Orders page:  [bold]{public_url}/orders[/bold]
  API key (new at each start):  {api_key}

  {next_steps}

  Amazon is played by the SP-API simulator at {simulator.base_url}: seller {seller.seller_id},
  {seller.orders:,} orders over {seller.days} days on Amazon.fr, .de, .es and .it.

  export KB_KEY={api_key}
  curl -H "Authorization: Bearer $KB_KEY" -H "X-Tenant-Id: {DEMO_TENANT}" \\
       "{public_url}/api/v1/orders?limit=5"

  API reference: {public_url}/docs     Stop: Ctrl+C
""",
        soft_wrap=True,
    )
