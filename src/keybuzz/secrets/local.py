"""The default secret store: AES-256-GCM ciphertext in PostgreSQL, inside the caller's transaction.

Versions and check-and-set follow Vault KV v2, so callers cannot tell the backends apart.
Statements only run in the caller's session; the caller's entry point commits.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from keybuzz.db import cross_tenant
from keybuzz.secrets.keys import KeyRing, KeySource, Sealed, seal, unseal
from keybuzz.secrets.models import TenantSecret
from keybuzz.secrets.store import (
    Absence,
    MissingSecret,
    SecretConflict,
    SecretData,
    SecretMalformed,
    SecretName,
    SecretStore,
    Stored,
)
from keybuzz.tenants.models import TenantId

logger = logging.getLogger(__name__)


class LocalSecretStore:
    def __init__(self, session: AsyncSession, ring: KeyRing) -> None:
        self._session = session
        self._ring = ring

    async def read(
        self, tenant_id: TenantId, name: SecretName
    ) -> Stored[SecretData] | MissingSecret:
        row = (
            await self._session.execute(
                select(
                    TenantSecret.version,
                    TenantSecret.key_id,
                    TenantSecret.nonce,
                    TenantSecret.ciphertext,
                ).where(TenantSecret.tenant_id == tenant_id, TenantSecret.name == name)
            )
        ).one_or_none()
        if row is None:
            return MissingSecret(Absence.NEVER_WRITTEN, version=0)
        version, key_id, nonce, ciphertext = row
        sealed = _sealed(key_id, nonce, ciphertext)
        if sealed is None:
            return MissingSecret(Absence.DELETED, version=version)
        plaintext = unseal(self._ring, sealed, tenant_id=tenant_id, name=name, version=version)
        return Stored(_decode(plaintext, tenant_id=tenant_id, name=name, version=version), version)

    async def write(
        self, tenant_id: TenantId, name: SecretName, data: SecretData, *, cas: int
    ) -> int:
        if cas < 0:
            raise ValueError("cas is a version number, 0 for a secret that must not exist yet")
        version = cas + 1
        plaintext = json.dumps(data.reveal(), sort_keys=True).encode()
        sealed = seal(self._ring, plaintext, tenant_id=tenant_id, name=name, version=version)
        await self._session.flush()
        if cas == 0:
            written = await self._session.scalar(
                insert(TenantSecret)
                .values(tenant_id=tenant_id, name=name, version=version, **_columns(sealed))
                .on_conflict_do_nothing(index_elements=["tenant_id", "name"])
                .returning(TenantSecret.version)
            )
        else:
            written = await self._session.scalar(
                update(TenantSecret)
                .where(
                    TenantSecret.tenant_id == tenant_id,
                    TenantSecret.name == name,
                    TenantSecret.version == cas,
                )
                .values(version=version, deleted_at=None, **_columns(sealed))
                .returning(TenantSecret.version)
            )
        if written is None:
            raise SecretConflict.stale(tenant_id, name, cas)
        logger.info("secret %s of tenant %s written, version %d", name, tenant_id, version)
        return version

    async def delete(self, tenant_id: TenantId, name: SecretName) -> bool:
        deleted = await self._session.scalar(
            update(TenantSecret)
            .where(
                TenantSecret.tenant_id == tenant_id,
                TenantSecret.name == name,
                TenantSecret.ciphertext.is_not(None),
            )
            .values(key_id=None, nonce=None, ciphertext=None, deleted_at=func.now())
            .returning(TenantSecret.version)
        )
        if deleted is not None:
            logger.info("secret %s of tenant %s deleted at version %d", name, tenant_id, deleted)
        return deleted is not None

    async def exists(self, tenant_id: TenantId, name: SecretName) -> bool:
        found = await self._session.scalar(
            select(TenantSecret.version).where(
                TenantSecret.tenant_id == tenant_id,
                TenantSecret.name == name,
                TenantSecret.ciphertext.is_not(None),
            )
        )
        return found is not None


def _sealed(key_id: str | None, nonce: bytes | None, ciphertext: bytes | None) -> Sealed | None:
    """The stored ciphertext, or ``None`` for a deleted secret."""
    if key_id is None or nonce is None or ciphertext is None:
        return None
    return Sealed(key_id, nonce, ciphertext)


def _columns(sealed: Sealed) -> dict[str, object]:
    return {"key_id": sealed.key_id, "nonce": sealed.nonce, "ciphertext": sealed.ciphertext}


def _decode(plaintext: bytes, *, tenant_id: TenantId, name: SecretName, version: int) -> SecretData:
    try:
        return SecretData(json.loads(plaintext))
    except (ValueError, TypeError, AttributeError):
        raise SecretMalformed(
            f"Secret {name} of tenant {tenant_id} (version {version}) is not a set of text fields.",
            tenant_id=tenant_id,
            name=name,
            version=version,
        ) from None


class LocalSecretBackend:
    name = "local"

    def __init__(self, keys: KeySource) -> None:
        self.keys = keys

    def store(self, session: AsyncSession) -> SecretStore:
        return LocalSecretStore(session, self.keys.current())

    async def describe(self, session: AsyncSession) -> list[tuple[str, str]]:
        ring = self.keys.current()
        counts = await count_by_key(session)
        stored = sum(count for key_id, count in counts.items() if key_id is not None)
        by_key = ", ".join(f"{key_id}: {n}" for key_id, n in counts.items() if key_id is not None)
        return [
            ("backend", "local (AES-256-GCM in PostgreSQL table tenant_secrets)"),
            ("keys from", self.keys.description),
            ("encrypting key", ring.primary.id),
            ("decrypt-only keys", ", ".join(key.id for key in ring.others) or "none"),
            ("stored secrets", f"{stored}" + (f" ({by_key})" if by_key else "")),
            ("deleted secrets", str(counts.get(None, 0))),
        ]

    async def aclose(self) -> None:
        return None


# --- Key rotation -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Reencryption:
    key_id: str
    reencrypted: int
    already_current: int

    @property
    def total(self) -> int:
        return self.reencrypted + self.already_current


async def reencrypt_all(session: AsyncSession, ring: KeyRing) -> Reencryption:
    """Re-encrypt, in the caller's transaction, every secret not under the ring's primary key.

    Any secret that cannot be decrypted aborts the whole rotation (the caller rolls back),
    so no key is retired while a secret still depends on it.
    """
    rows = (
        await session.execute(
            cross_tenant(
                select(
                    TenantSecret.tenant_id,
                    TenantSecret.name,
                    TenantSecret.version,
                    TenantSecret.key_id,
                    TenantSecret.nonce,
                    TenantSecret.ciphertext,
                )
                .where(TenantSecret.ciphertext.is_not(None))
                .order_by(TenantSecret.tenant_id, TenantSecret.name)
                .with_for_update(),
                "a key rotation re-encrypts every tenant's secrets",
            )
        )
    ).all()
    reencrypted = 0
    for tenant_id, name, version, key_id, nonce, ciphertext in rows:
        sealed = _sealed(key_id, nonce, ciphertext)
        if sealed is None or sealed.key_id == ring.primary.id:
            continue
        plaintext = unseal(ring, sealed, tenant_id=tenant_id, name=name, version=version)
        resealed = seal(ring, plaintext, tenant_id=tenant_id, name=name, version=version)
        await session.execute(
            update(TenantSecret)
            .where(
                TenantSecret.tenant_id == tenant_id,
                TenantSecret.name == name,
                TenantSecret.version == version,
            )
            .values(**_columns(resealed))
        )
        reencrypted += 1
    logger.info("re-encrypted %d secrets under key %s", reencrypted, ring.primary.id)
    return Reencryption(ring.primary.id, reencrypted, len(rows) - reencrypted)


async def count_by_key(session: AsyncSession) -> dict[str | None, int]:
    """Secrets per key id (``None``: deleted secrets), across tenants: an operator's view."""
    rows = await session.execute(
        cross_tenant(
            select(TenantSecret.key_id, func.count(TenantSecret.tenant_id))
            .group_by(TenantSecret.key_id)
            .order_by(TenantSecret.key_id),
            "the operator's count of secrets per key spans every tenant",
        )
    )
    return {key_id: count for key_id, count in rows}
