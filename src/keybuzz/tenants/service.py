"""Tenants and their API keys; the one place that turns a credential into a ``TenantId``."""

from __future__ import annotations

import hashlib
import re
import secrets

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from keybuzz.db import cross_tenant
from keybuzz.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from keybuzz.tenants.models import TENANT_ID_PATTERN, ApiKey, Tenant, TenantId
from keybuzz.tenants.schemas import CreatedTenant, TenantRead

API_KEY_PREFIX = "kb_"


class TenantExists(Conflict):
    code = "tenant_exists"
    title = "Tenant already exists"


class TenantNotFound(NotFound):
    code = "tenant_not_found"
    title = "Tenant not found"


class TenantMismatch(Forbidden):
    code = "tenant_forbidden"
    title = "This API key does not belong to that tenant"


def hash_api_key(raw_key: str) -> str:
    # A generated key carries 256 bits of randomness, so a fast hash is enough to store it.
    return hashlib.sha256(raw_key.encode()).hexdigest()


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def validate_tenant_id(raw: str) -> TenantId:
    if not re.fullmatch(TENANT_ID_PATTERN, raw):
        raise InvalidInput(
            "tenant",
            "2-64 characters: lowercase letters, digits, '-' or '_', starting with a letter "
            "or digit",
        )
    return TenantId(raw)


async def create_tenant(session: AsyncSession, tenant_id: str, name: str | None) -> CreatedTenant:
    valid_id = validate_tenant_id(tenant_id)
    if await session.get(Tenant, valid_id) is not None:
        raise TenantExists(f"Tenant {valid_id} already exists.")
    tenant = Tenant(id=valid_id, name=name or valid_id)
    session.add(tenant)
    await session.flush()
    raw_key = await _add_api_key(session, valid_id)
    await session.refresh(tenant)
    read = TenantRead(id=tenant.id, name=tenant.name, created_at=tenant.created_at, active_keys=1)
    return CreatedTenant(tenant=read, api_key=raw_key)


async def issue_api_key(session: AsyncSession, tenant_id: TenantId) -> str:
    await require_tenant(session, tenant_id)
    return await _add_api_key(session, tenant_id)


async def revoke_api_keys(session: AsyncSession, tenant_id: TenantId) -> int:
    await require_tenant(session, tenant_id)
    result = await session.execute(
        update(ApiKey)
        .where(ApiKey.tenant_id == tenant_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def _add_api_key(session: AsyncSession, tenant_id: TenantId) -> str:
    raw_key = new_api_key()
    session.add(ApiKey(tenant_id=tenant_id, key_hash=hash_api_key(raw_key), prefix=raw_key[:10]))
    await session.flush()
    return raw_key


async def require_tenant(session: AsyncSession, tenant_id: str) -> TenantId:
    valid_id = validate_tenant_id(tenant_id)
    if await session.get(Tenant, valid_id) is None:
        raise TenantNotFound(f"No tenant {valid_id}; create it with `keybuzz tenants create`.")
    return valid_id


async def list_tenants(session: AsyncSession) -> list[TenantRead]:
    active_keys = (
        select(func.count())
        .where(ApiKey.tenant_id == Tenant.id, ApiKey.revoked_at.is_(None))
        .scalar_subquery()
    )
    rows = await session.execute(select(Tenant, active_keys).order_by(Tenant.id))
    return [
        TenantRead(id=t.id, name=t.name, created_at=t.created_at, active_keys=count)
        for t, count in rows
    ]


async def authenticate(
    session: AsyncSession, *, bearer_key: str | None, tenant_header: str | None
) -> TenantId:
    """The tenant a request may act for: its key must be valid and belong to ``tenant_header``."""
    if not bearer_key:
        raise Unauthenticated("Send `Authorization: Bearer <API key>`.")
    statement = select(ApiKey.tenant_id).where(
        ApiKey.key_hash == hash_api_key(bearer_key), ApiKey.revoked_at.is_(None)
    )
    key_tenant = await session.scalar(
        cross_tenant(statement, "an API key is what tells which tenant a request acts for")
    )
    if key_tenant is None:
        raise Unauthenticated("The API key is unknown or revoked.")
    if not tenant_header:
        raise TenantMismatch("Send the `X-Tenant-Id` header naming the tenant of this API key.")
    if tenant_header != key_tenant:
        raise TenantMismatch("This API key does not give access to that tenant.")
    return TenantId(key_tenant)
