from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from keybuzz.config import get_settings
from keybuzz.db import run_in_transaction
from keybuzz.tenants import service
from keybuzz.tenants.models import TenantId

app = typer.Typer(help="Tenants (sellers) and their API keys.", no_args_is_help=True)
console = Console()


@app.command("create")
def create(
    tenant_id: Annotated[str, typer.Argument(help="e.g. ecomlg-001")],
    name: Annotated[str | None, typer.Option(help="Display name (default: the id).")] = None,
) -> None:
    """Create a tenant and print its first API key (shown once, never stored in clear)."""
    created = run_in_transaction(
        get_settings(), lambda session: service.create_tenant(session, tenant_id, name)
    )
    console.print(f"Created tenant [bold]{created.tenant.id}[/bold] ({created.tenant.name}).")
    console.print("API key (store it now; it is not shown again):")
    print(created.api_key)


@app.command("new-key")
def new_key(tenant_id: str) -> None:
    """Issue another API key for a tenant (the old ones stay valid until revoked)."""
    key = run_in_transaction(
        get_settings(), lambda session: service.issue_api_key(session, TenantId(tenant_id))
    )
    console.print("API key (store it now; it is not shown again):")
    print(key)


@app.command("revoke-keys")
def revoke_keys(tenant_id: str) -> None:
    """Revoke every API key of a tenant."""
    revoked = run_in_transaction(
        get_settings(), lambda session: service.revoke_api_keys(session, TenantId(tenant_id))
    )
    console.print(f"Revoked {revoked} key(s) of {tenant_id}.")


@app.command("list")
def list_tenants() -> None:
    """List tenants with their number of active API keys."""
    tenants = run_in_transaction(get_settings(), service.list_tenants)
    table = Table("id", "name", "active keys", "created")
    for tenant in tenants:
        table.add_row(
            tenant.id, tenant.name, str(tenant.active_keys), f"{tenant.created_at:%Y-%m-%d %H:%M}"
        )
    console.print(table)
