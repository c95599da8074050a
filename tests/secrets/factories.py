"""Plain factories for secret store tests."""

from __future__ import annotations

import datetime as dt
import secrets

from keybuzz.secrets import SecretData
from keybuzz.secrets.keys import EnvironmentKeys, KeyRing, SecretKey
from keybuzz.secrets.local import LocalSecretBackend


def refresh_token() -> str:
    """A value shaped like an LWA refresh token, unique so that any leak is unambiguous."""
    return f"Atzr|IwEBI{secrets.token_urlsafe(48)}"


def amazon_data(token: str | None = None) -> SecretData:
    return SecretData(
        {
            "refresh_token": token or refresh_token(),
            "selling_partner_id": "A3FAKESELLER",
            "region": "eu",
            "authorized_at": dt.datetime.now(dt.UTC).isoformat(),
        }
    )


def local_backend(*keys: SecretKey) -> LocalSecretBackend:
    """A local backend holding exactly ``keys`` (the first encrypts)."""
    return LocalSecretBackend(EnvironmentKeys(KeyRing(keys[0], keys[1:])))
