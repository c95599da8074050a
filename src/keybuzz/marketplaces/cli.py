from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from keybuzz.config import get_settings
from keybuzz.db import migrate, resolve_database_url
from keybuzz.marketplaces.checks import check_all
from keybuzz.marketplaces.schemas import ConnectionRead
from keybuzz.runtime import open_runtime
from keybuzz.tenants.models import TenantId
from keybuzz.tenants.service import validate_tenant_id

app = typer.Typer(help="Marketplace connections of the tenants.", no_args_is_help=True)
console = Console()


@app.command("check")
def check(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant (default: all).")] = None,
) -> None:
    """Verify connections (secret, Amazon token, marketplaces) and record what was found."""
    tenant_id = validate_tenant_id(tenant) if tenant is not None else None
    settings = get_settings()
    url = resolve_database_url(settings)
    migrate(url)

    async def main() -> list[tuple[TenantId, ConnectionRead | None]]:
        async with open_runtime(settings, database_url=url) as runtime:
            return await check_all(runtime, tenant_id)

    table = Table("tenant", "status", "reason", "marketplaces")
    results = asyncio.run(main())
    for tenant_id_checked, connection in results:
        if connection is None:
            table.add_row(tenant_id_checked, "not checked", "secret store unavailable", "")
            continue
        table.add_row(
            tenant_id_checked,
            connection.status.value,
            connection.status_reason or "",
            ", ".join(m.country_code or m.id for m in connection.marketplaces),
        )
    if not results:
        console.print("No connections to check.")
        return
    console.print(table)
