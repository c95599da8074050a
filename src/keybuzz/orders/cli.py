from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from sqlalchemy.ext.asyncio import AsyncSession

from keybuzz.config import get_settings
from keybuzz.db import run_in_transaction
from keybuzz.orders import service
from keybuzz.tenants.service import require_tenant

app = typer.Typer(help="A tenant's stored orders.", no_args_is_help=True)
console = Console()


@app.command("purge")
def purge(
    tenant: Annotated[str, typer.Option(help="The tenant whose orders to delete.")],
    marketplace: Annotated[
        str | None, typer.Option(help="Only this marketplace's orders, e.g. amazon.")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a tenant's orders and their items (e.g. test data before a real backfill)."""

    async def work(session: AsyncSession) -> int | None:
        tenant_id = await require_tenant(session, tenant)
        count = await service.count_orders(session, tenant_id, marketplace)
        scope = f"{marketplace} orders" if marketplace else "orders"
        console.print(f"Tenant {tenant_id} has {count} {scope}.")
        if count == 0:
            return 0
        if not yes and not typer.confirm(f"Delete these {count} {scope} for good?"):
            return None
        result = await service.purge_orders(
            session, tenant_id, marketplace=marketplace, confirm=True
        )
        return result.deleted_orders

    deleted = run_in_transaction(get_settings(), work)
    if deleted is None:
        console.print("Nothing deleted.")
        raise typer.Exit(1)
    console.print(f"Deleted {deleted} orders.")
