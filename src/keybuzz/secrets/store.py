"""The secret store contract: what a stored secret looks like, the operations, the errors."""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from keybuzz.errors import KeyBuzzError
from keybuzz.tenants.models import TENANT_ID_PATTERN, TenantId

T = TypeVar("T")


class SecretName(enum.StrEnum):
    """The secrets a tenant can have; each is one key in the store."""

    AMAZON_SPAPI = "amazon_spapi"


class SecretData:
    """A secret's fields. ``repr`` and ``str`` name the fields, never their values."""

    __slots__ = ("_fields",)

    def __init__(self, fields: Mapping[str, str]) -> None:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in fields.items()):
            raise TypeError("secret fields must be strings")
        self._fields = dict(fields)

    def reveal(self) -> dict[str, str]:
        """The values in clear: hand them to the code that needs them, never to a log."""
        return dict(self._fields)

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(sorted(self._fields))

    def __repr__(self) -> str:
        return f"SecretData(fields={list(self.field_names)!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretData) and other._fields == self._fields

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True)
class Stored(Generic[T]):
    """A secret that exists, with the version a replacing write passes as ``cas``."""

    value: T
    version: int


class Absence(enum.StrEnum):
    NEVER_WRITTEN = "never_written"
    """No such key. Vault also says this after its metadata was deleted."""
    DELETED = "deleted"
    """The key exists but its latest version was deleted (disconnect, or an operator)."""
    DESTROYED = "destroyed"
    """Vault destroyed the latest version's data."""


@dataclass(frozen=True)
class MissingSecret:
    """No readable secret. ``version`` is the ``cas`` a write must pass to create one again."""

    reason: Absence
    version: int


class SecretStore(Protocol):
    """A tenant's named secrets, versioned, written with check-and-set (Vault KV v2 semantics)."""

    async def read(
        self, tenant_id: TenantId, name: SecretName
    ) -> Stored[SecretData] | MissingSecret:
        """The latest version, or why there is none."""
        ...

    async def write(
        self, tenant_id: TenantId, name: SecretName, data: SecretData, *, cas: int
    ) -> int:
        """Store a new version and return its number.

        ``cas=0`` succeeds only if the key does not exist; ``cas=N`` only if the current version
        is N (also when it was deleted: pass ``MissingSecret.version``). Otherwise
        ``SecretConflict``.
        """
        ...

    async def delete(self, tenant_id: TenantId, name: SecretName) -> bool:
        """Remove the secret's data for good; ``True`` if there was data to remove."""
        ...

    async def exists(self, tenant_id: TenantId, name: SecretName) -> bool:
        """Whether a readable latest version exists, without fetching or decrypting it."""
        ...


class SecretBackend(Protocol):
    """The configured backend, one per process (created at startup, closed at shutdown)."""

    @property
    def name(self) -> str: ...

    def store(self, session: AsyncSession) -> SecretStore:
        """The store for one unit of work. The local store writes in ``session``'s transaction;
        Vault ignores the session (its writes are immediate and not rolled back)."""
        ...

    async def describe(self, session: AsyncSession) -> list[tuple[str, str]]:
        """Operator-facing facts (backend, key ids, counts, server state), never secret values."""
        ...

    async def aclose(self) -> None: ...


def secret_path(tenant_id: TenantId, name: SecretName) -> str:
    """``keybuzz/tenants/<tenant>/<name>``: the key, also the local store's encryption context."""
    if not re.fullmatch(TENANT_ID_PATTERN, tenant_id):
        raise ValueError("not a valid tenant id")
    return f"keybuzz/tenants/{tenant_id}/{SecretName(name).value}"


# --- Errors -----------------------------------------------------------------------------------
# Messages name the tenant, the secret, versions and key ids; never a secret value.


class SecretStoreError(KeyBuzzError):
    status = 500
    code = "secret_store_error"
    title = "Secret store error"


class SecretStoreUnavailable(SecretStoreError):
    """Sealed, down, unreachable or too slow: retry later; nothing was learned about the secret."""

    status = 503
    code = "secret_store_unavailable"
    title = "Secret store unavailable"
    retry_after_seconds = 5

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"Retry-After": str(self.retry_after_seconds)})


class SecretStoreMisconfigured(SecretStoreError):
    code = "secret_store_misconfigured"
    title = "Secret store misconfigured"


class SecretAccessDenied(SecretStoreError):
    """Vault refused our credentials or policy, even after a fresh login: an operator must act."""

    code = "secret_store_access_denied"
    title = "Secret store denied access"


class SecretConflict(SecretStoreError):
    """The check-and-set version did not match: someone else wrote (or deleted) it first."""

    status = 409
    code = "secret_version_conflict"
    title = "Secret was changed concurrently"

    @classmethod
    def stale(cls, tenant_id: TenantId, name: SecretName, cas: int) -> SecretConflict:
        return cls(
            f"Secret {name} of tenant {tenant_id} is no longer at version {cas}: "
            "read it again before writing."
        )


class SecretUnreadable(SecretStoreError):
    """A stored secret cannot be used. ``version`` lets a new authorization overwrite it."""

    code = "secret_unreadable"
    title = "Secret unreadable"

    def __init__(self, detail: str, *, tenant_id: str, name: str, version: int) -> None:
        super().__init__(detail)
        self.tenant_id = tenant_id
        self.name = name
        self.version = version


class SecretCorrupted(SecretUnreadable):
    """Authenticated decryption failed: tampered, truncated, or moved from another row."""

    code = "secret_corrupted"
    title = "Secret failed its integrity check"


class SecretKeyUnknown(SecretUnreadable):
    """Encrypted under a key that is not configured (wrong key, or a key retired too early)."""

    code = "secret_key_unknown"
    title = "Secret encrypted with an unknown key"


class SecretMalformed(SecretUnreadable):
    """Readable, but not the shape this code expects (e.g. a field missing)."""

    code = "secret_malformed"
    title = "Secret has an unexpected shape"
