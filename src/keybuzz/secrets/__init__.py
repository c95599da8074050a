"""Tenant secrets (the Amazon refresh token): Vault KV v2, or AES-GCM encrypted in PostgreSQL.

Start here: ``open_secret_backend(settings)`` once per process, ``backend.store(session)`` per
unit of work, and the ``SecretStore`` operations (or ``read_amazon_spapi``/``write_amazon_spapi``).
"""

from keybuzz.secrets.schemas import AmazonSpapiSecret
from keybuzz.secrets.service import open_secret_backend, read_amazon_spapi, write_amazon_spapi
from keybuzz.secrets.store import (
    Absence,
    MissingSecret,
    SecretAccessDenied,
    SecretBackend,
    SecretConflict,
    SecretCorrupted,
    SecretData,
    SecretKeyUnknown,
    SecretMalformed,
    SecretName,
    SecretStore,
    SecretStoreError,
    SecretStoreMisconfigured,
    SecretStoreUnavailable,
    SecretUnreadable,
    Stored,
)

__all__ = [
    "Absence",
    "AmazonSpapiSecret",
    "MissingSecret",
    "SecretAccessDenied",
    "SecretBackend",
    "SecretConflict",
    "SecretCorrupted",
    "SecretData",
    "SecretKeyUnknown",
    "SecretMalformed",
    "SecretName",
    "SecretStore",
    "SecretStoreError",
    "SecretStoreMisconfigured",
    "SecretStoreUnavailable",
    "SecretUnreadable",
    "Stored",
    "open_secret_backend",
    "read_amazon_spapi",
    "write_amazon_spapi",
]
