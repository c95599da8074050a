"""Per-connection state that must outlive one client object: Amazon's quotas are per seller
and app, so the rate-limit buckets (and the tokens) of a connection live here, keyed by its
``connection_key``, not in a client built for one job. The process's ``Runtime`` holds the one
registry every client of the process shares (``SpApiApp.registry``)."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

from pydantic import SecretStr

from keybuzz.amazon.lwa import TokenCache
from keybuzz.amazon.ratelimit import BucketSet, BucketSnapshot, Clock


def _fingerprint(secret: SecretStr) -> str:
    return hashlib.sha256(secret.get_secret_value().encode()).hexdigest()


@dataclass(slots=True)
class ConnectionState:
    buckets: BucketSet
    credential: str
    """Fingerprint of the refresh token the cached tokens came from."""
    access_token: TokenCache = field(default_factory=TokenCache)
    restricted_data_token: TokenCache = field(default_factory=TokenCache)
    v2026_denied_until: float = 0.0
    """searchOrders answered 403 for this seller: use Orders v0 until then (monotonic time)."""
    pii_denied_until: float = 0.0
    """createRestrictedDataToken answered 403: no PII from v0 until then (monotonic time)."""


class ConnectionRegistry:
    def __init__(self, *, clock: Clock = time.monotonic, wall_clock: Clock = time.time) -> None:
        """``clock`` (monotonic seconds) paces the rate-limit buckets, ``wall_clock`` (epoch
        seconds) dates their snapshots; tests pass virtual ones."""
        self._clock = clock
        self._wall_clock = wall_clock
        self._states: dict[str, ConnectionState] = {}

    def state(
        self, connection_key: str, *, refresh_token: SecretStr, sandbox: bool = False
    ) -> ConnectionState:
        """The connection's state; a new refresh token (a reconnect) drops the cached tokens
        but keeps the buckets, which belong to the seller."""
        credential = _fingerprint(refresh_token)
        state = self._states.get(connection_key)
        if state is None:
            buckets = BucketSet(sandbox=sandbox, clock=self._clock, wall_clock=self._wall_clock)
            state = ConnectionState(buckets=buckets, credential=credential)
            self._states[connection_key] = state
        elif state.credential != credential:
            state.credential = credential
            state.access_token = TokenCache()
            state.restricted_data_token = TokenCache()
            state.v2026_denied_until = state.pii_denied_until = 0.0
        return state

    def snapshot(self, connection_key: str) -> BucketSnapshot | None:
        """The connection's buckets as of now (``None`` if this process has none), for another
        process to ``restore``; ``model_dump(mode="json")`` to store it."""
        state = self._states.get(connection_key)
        return state.buckets.snapshot() if state is not None else None

    def forget(self, connection_key: str) -> None:
        """Drop a connection's state (it was disconnected)."""
        self._states.pop(connection_key, None)

    def __len__(self) -> int:
        return len(self._states)
