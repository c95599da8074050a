"""Use cases of the secret store: choosing the backend, and each secret's typed read and write."""

from __future__ import annotations

from keybuzz.config import Settings
from keybuzz.secrets.keys import key_source
from keybuzz.secrets.local import LocalSecretBackend
from keybuzz.secrets.schemas import AmazonSpapiSecret
from keybuzz.secrets.store import MissingSecret, SecretBackend, SecretName, SecretStore, Stored
from keybuzz.secrets.vault import VaultSecretStore
from keybuzz.tenants.models import TenantId


def open_secret_backend(settings: Settings) -> SecretBackend:
    """The configured backend (``KEYBUZZ_SECRETS_BACKEND``): open once per process, then
    ``backend.store(session)`` per unit of work, ``await backend.aclose()`` at shutdown.

    The local backend creates its key file on first start; neither backend contacts a server
    here, so a sealed Vault does not stop the application from starting.
    """
    if settings.secrets_backend == "vault":
        return VaultSecretStore.from_settings(settings)
    return LocalSecretBackend(key_source(settings))


async def read_amazon_spapi(
    store: SecretStore, tenant_id: TenantId
) -> Stored[AmazonSpapiSecret] | MissingSecret:
    found = await store.read(tenant_id, SecretName.AMAZON_SPAPI)
    if isinstance(found, MissingSecret):
        return found
    return AmazonSpapiSecret.from_stored(found, tenant_id=tenant_id)


async def write_amazon_spapi(
    store: SecretStore, tenant_id: TenantId, secret: AmazonSpapiSecret, *, cas: int
) -> int:
    """Store a new authorization; ``cas`` is the version read (0 at the first connection)."""
    return await store.write(tenant_id, SecretName.AMAZON_SPAPI, secret.to_data(), cas=cas)
