"""Secret stores to test (the OpenBao server itself is in tests/fixtures/vault.py)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from keybuzz.config import Settings
from keybuzz.secrets import SecretStore, open_secret_backend
from keybuzz.secrets.vault import VaultSecretStore
from keybuzz.tenants.models import TenantId
from tests.factories import make_tenant
from tests.fixtures.vault import VaultServer, vault_settings


@pytest.fixture
async def vault_store(vault_server: VaultServer) -> AsyncIterator[VaultSecretStore]:
    store = VaultSecretStore(addr=vault_server.addr, token=vault_server.root_token)
    yield store
    await store.aclose()


@pytest.fixture
def tenant_id() -> TenantId:
    """A tenant of its own for each test (Vault keys outlive tests; no tenant row is needed)."""
    return TenantId(f"t-{uuid.uuid4().hex[:12]}")


@pytest.fixture
async def new_tenant(session: AsyncSession) -> TenantId:
    """A tenant row with a unique id: Vault keeps its keys across tests, PostgreSQL does not."""
    return (await make_tenant(session, f"t-{uuid.uuid4().hex[:12]}")).id


@pytest.fixture(params=["local", "vault"])
async def any_store(
    request: pytest.FixtureRequest, session: AsyncSession, settings: Settings
) -> AsyncIterator[SecretStore]:
    """Each backend in turn, as the application opens it from its settings."""
    if request.param == "vault":
        server: VaultServer = request.getfixturevalue("vault_server")
        settings = vault_settings(settings.data_dir.parent, server)
    backend = open_secret_backend(settings)
    yield backend.store(session)
    await backend.aclose()
