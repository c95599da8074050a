"""Queries on a tenant's marketplace connections and OAuth states.

Each names its tenant, except the few marked ``cross_tenant``, which say why they cannot.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from keybuzz.db import bind_tenant_of, cross_tenant
from keybuzz.marketplaces.models import ConnectionStatus, MarketplaceConnection, OAuthState
from keybuzz.tenants.models import TenantId


async def get_connection(
    session: AsyncSession, tenant_id: TenantId, marketplace: str
) -> MarketplaceConnection | None:
    result = await session.scalars(
        select(MarketplaceConnection).where(
            MarketplaceConnection.tenant_id == tenant_id,
            MarketplaceConnection.marketplace == marketplace,
        )
    )
    return result.one_or_none()


async def list_connections(
    session: AsyncSession, tenant_id: TenantId
) -> list[MarketplaceConnection]:
    result = await session.scalars(
        select(MarketplaceConnection)
        .where(MarketplaceConnection.tenant_id == tenant_id)
        .order_by(MarketplaceConnection.marketplace)
    )
    return list(result)


async def create_connection(
    session: AsyncSession, tenant_id: TenantId, marketplace: str, **values: Any
) -> MarketplaceConnection:
    connection = MarketplaceConnection(tenant_id=tenant_id, marketplace=marketplace, **values)
    session.add(connection)
    await session.flush()
    return connection


async def update_connection(
    session: AsyncSession, connection: MarketplaceConnection, **values: Any
) -> MarketplaceConnection:
    """Change a connection; the statement names its tenant, like every other one here."""
    result = await session.execute(
        update(MarketplaceConnection)
        .where(
            MarketplaceConnection.tenant_id == connection.tenant_id,
            MarketplaceConnection.id == connection.id,
        )
        .values(**values)
        .returning(MarketplaceConnection)
        .execution_options(populate_existing=True)
    )
    return result.scalar_one()


async def lock_seller(session: AsyncSession, marketplace: str, selling_partner_id: str) -> None:
    """Hold, until the transaction ends, the lock on one seller account: consents of it take
    turns between checking who has it and recording who does."""
    key = f"seller:{marketplace}:{selling_partner_id}"
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": key}
    )


async def seller_held_elsewhere(
    session: AsyncSession, selling_partner_id: str, other_than: TenantId
) -> bool:
    """Whether another tenant's connection holds the same Amazon seller account: one that is
    neither disconnected nor waiting for a new consent (its seller id is then history). Other
    tenants' rows are out of the request's sight (row-level security): a function running with
    the owner's rights answers this one question (migration 0009)."""
    held = await session.scalar(
        select(func.keybuzz_seller_held_elsewhere(selling_partner_id, other_than))
    )
    return bool(held)


async def all_connections_to_check(session: AsyncSession) -> list[tuple[TenantId, str]]:
    """Every connection an operator check should look at, across tenants."""
    statement = (
        select(MarketplaceConnection.tenant_id, MarketplaceConnection.marketplace)
        .where(MarketplaceConnection.status != ConnectionStatus.DISCONNECTED)
        .order_by(MarketplaceConnection.tenant_id)
    )
    rows = await session.execute(
        cross_tenant(statement, "the operator's connection check covers every tenant")
    )
    return [(TenantId(tenant), marketplace) for tenant, marketplace in rows]


async def bind_tenant_of_state(session: AsyncSession, state_hash: str) -> TenantId | None:
    """The tenant a consent state was issued to, the transaction bound to it: Amazon's redirect
    to the OAuth callback carries no tenant; the state, which only the tenant's browser holds,
    names it. Read by a function running with the owner's rights (migration 0009)."""
    tenant = await bind_tenant_of(session, func.keybuzz_tenant_of_oauth_state(state_hash))
    return None if tenant is None else TenantId(tenant)


async def consume_state(
    session: AsyncSession, tenant_id: TenantId, state_hash: str, now: dt.datetime
) -> OAuthState | None:
    """Mark a valid, unused, unexpired state used, atomically; ``None`` if it is not all three."""
    statement = (
        update(OAuthState)
        .where(
            OAuthState.tenant_id == tenant_id,
            OAuthState.state_hash == state_hash,
            OAuthState.used_at.is_(None),
            OAuthState.expires_at > now,
        )
        .values(used_at=now)
        .returning(OAuthState)
        .execution_options(synchronize_session=False)
    )
    result = await session.execute(statement)
    return result.scalar_one_or_none()


async def find_state(
    session: AsyncSession, tenant_id: TenantId, state_hash: str
) -> OAuthState | None:
    statement = select(OAuthState).where(
        OAuthState.tenant_id == tenant_id, OAuthState.state_hash == state_hash
    )
    return (await session.scalars(statement)).one_or_none()


async def delete_expired_states(session: AsyncSession, expired_before: dt.datetime) -> int:
    """Delete every tenant's consent states that expired before ``expired_before``; how many."""
    statement = delete(OAuthState).where(OAuthState.expires_at < expired_before)
    why = "expired consent states are deleted for every tenant at once, by the periodic job"
    result = await session.execute(cross_tenant(statement, why))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
