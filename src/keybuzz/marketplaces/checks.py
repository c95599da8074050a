"""Checking connections in bulk (operator command, periodic job): one transaction each."""

from __future__ import annotations

import logging

from keybuzz.db import tenant_transaction, transaction
from keybuzz.marketplaces import repository, service
from keybuzz.marketplaces.schemas import ConnectionRead
from keybuzz.runtime import Runtime
from keybuzz.secrets import SecretStoreUnavailable
from keybuzz.tenants.models import TenantId

logger = logging.getLogger(__name__)


async def tenants_to_check(runtime: Runtime, tenant: TenantId | None) -> list[TenantId]:
    if tenant is not None:
        return [tenant]
    async with transaction(runtime.privileged_sessionmaker) as session:
        found = await repository.all_connections_to_check(session)
    return sorted({tenant_id for tenant_id, _ in found})


async def check_one(runtime: Runtime, tenant_id: TenantId) -> ConnectionRead | None:
    """Check a tenant's connection; ``None`` when the secret store could not be reached."""
    try:
        async with tenant_transaction(runtime.sessionmaker, tenant_id) as session:
            store = runtime.secrets.store(session)
            return await service.check_connection(session, runtime.amazon, store, tenant_id)
    except SecretStoreUnavailable:
        logger.warning("connection check of %s skipped: secret store unavailable", tenant_id)
        return None


async def check_all(
    runtime: Runtime, tenant: TenantId | None = None
) -> list[tuple[TenantId, ConnectionRead | None]]:
    results = []
    for tenant_id in await tenants_to_check(runtime, tenant):
        results.append((tenant_id, await check_one(runtime, tenant_id)))
    return results
