"""``keybuzz simulator``: run the SP-API simulator alone and print how to point KeyBuzz at it."""

from __future__ import annotations

from typing import Annotated

import typer

from keybuzz.simulator.marketplaces import marketplace_ids_from_codes
from keybuzz.simulator.settings import SimulatorSettings


def run(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8100,
    orders: Annotated[
        int, typer.Option("--orders", "-n", help="Orders of the default seller.")
    ] = 1000,
    days: Annotated[int, typer.Option(help="Days of history those orders span.")] = 90,
    seed: Annotated[int, typer.Option(help="Seed of the generated data.")] = 42,
    rate_scale: Annotated[float, typer.Option(help="Multiplies every Amazon rate.")] = 1.0,
    marketplaces: Annotated[str, typer.Option(help="Comma-separated codes or ids.")] = "FR",
    live_orders_per_hour: Annotated[float, typer.Option(help="New orders arriving.")] = 0.0,
) -> None:
    """Run the SP-API simulator (LWA, consent, Orders v0/v2026, Reports, Sellers, Tokens)."""
    import uvicorn

    from keybuzz.simulator.app import create_app
    from keybuzz.simulator.state import Simulator

    try:
        marketplace_ids = marketplace_ids_from_codes(marketplaces)
    except KeyError as unknown:
        message = f"unknown marketplace {unknown}"
        raise typer.BadParameter(message, param_hint="--marketplaces") from None
    settings = SimulatorSettings(
        host=host,
        port=port,
        orders=orders,
        days=days,
        seed=seed,
        rate_scale=rate_scale,
        marketplaces=marketplace_ids,
        live_orders_per_hour=live_orders_per_hour,
    )
    simulator = Simulator(settings)
    refresh_token = simulator.authorize(settings.seller_id).value
    base_url = f"http://{host}:{port}"
    lines = [
        f"SP-API simulator on {base_url} (Amazon's static sandbox: {base_url}/sandbox)",
        f"  KEYBUZZ_SPAPI_ENDPOINT={base_url}",
        f"  KEYBUZZ_LWA_TOKEN_URL={base_url}/auth/o2/token",
        f"  KEYBUZZ_SELLER_CENTRAL_URL={base_url}",
        f"  LWA client_id      {settings.client_id}",
        f"  LWA client_secret  {settings.client_secret.get_secret_value()}",
        f"  application_id     {settings.application_id}",
        f"  redirect URIs      {' '.join(settings.redirect_uris)}",
        f"  seller {settings.seller_id}: {orders} orders over {days} days, seed {seed}",
        f"  refresh token      {refresh_token}",
        f"  inspection API     {base_url}/_sim (OpenAPI: {base_url}/_sim/docs)",
    ]
    # Plain output: a terminal-width wrap would cut the refresh token in two.
    typer.echo("\n".join(lines))
    uvicorn.run(create_app(settings, simulator), host=host, port=port, log_level="warning")
