"""Per-API-key and per-tenant request limits, shared by every API process through PostgreSQL.

Each limit is a token bucket (a rate per second and a burst) kept in the UNLOGGED table
``rate_limit_buckets``. A process does not ask PostgreSQL for every request: it takes a *lease*
of several tokens at once (``Limit.lease``: a tenth of the burst, or what a tenth of a second of
the rate allows, whichever is smaller) and serves requests from it; only a request that finds
its lease empty makes the round trip, on a small pool of its own (never the request's
connection, which a request already holds when it is authenticated). A bucket found empty is
remembered locally until a lease's worth has refilled, so a client over its limit is refused
without touching the database. Tokens taken are spent: over any stretch of time the cluster
serves at most the burst plus the rate times that time plus one lease per process.

Refused authentications are limited per client address in each process alone
(``AddressLimits``): they cost nothing to count and must not cost a database round trip each.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from keybuzz.config import Settings
from keybuzz.db import create_engine
from keybuzz.errors import RateLimited
from keybuzz.ratelimits.repository import take_tokens

Clock = Callable[[], float]
POOL_SIZE = 2
"""Connections of a process's rate limiter: each is held for one statement only."""
FORGET_AFTER_SECONDS = 300.0
"""A local lease untouched this long may be dropped (with what it held) once there are many."""
MANY = 10_000


@dataclass(frozen=True)
class Limit:
    per_second: float
    burst: int

    @property
    def lease(self) -> int:
        """Tokens a process takes at once: at most a tenth of the burst, at most what a tenth
        of a second of the rate allows, at least one."""
        return max(1, min(self.burst // 10, math.ceil(self.per_second / 10)))

    def seconds_until(self, tokens: float, held: float) -> float:
        """How long until a bucket holding ``held`` holds ``tokens``."""
        return max(0.0, (tokens - held) / self.per_second)


def key_limit(settings: Settings) -> Limit:
    return Limit(settings.rate_limit_key_per_second, settings.rate_limit_key_burst)


def tenant_limit(settings: Settings) -> Limit:
    return Limit(settings.rate_limit_tenant_per_second, settings.rate_limit_tenant_burst)


def anonymous_limit(settings: Settings) -> Limit:
    return Limit(settings.rate_limit_anonymous_per_second, settings.rate_limit_anonymous_burst)


@dataclass
class _Lease:
    tokens: int = 0
    refused_until: float = 0.0
    used_at: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class RateLimiter:
    """A process's share of the cluster's buckets: its leases, and the pool to refill them.

    ``credential`` names what authenticated a request (``key:<hash>`` for an API key,
    ``session:<hash>`` for the Orders page's session cookie); it has the key limit, its tenant
    the tenant limit, and a request takes one token of each.
    """

    def __init__(
        self, settings: Settings, database_url: str, *, clock: Clock = time.monotonic
    ) -> None:
        self.enabled = settings.rate_limit_enabled
        self.key_limit = key_limit(settings)
        self.tenant_limit = tenant_limit(settings)
        self._database_url = database_url
        self._engine: AsyncEngine | None = None
        self._clock = clock
        self._leases: dict[str, _Lease] = {}
        self._tenant_of: dict[str, str] = {}

    def refuse_if_over(self, credential: str) -> None:
        """Before authentication, with no database: a credential whose own bucket, or whose
        tenant's, this process found empty a moment ago is refused again at once. Only the
        holder of that very credential can be refused this way (its bucket was named after it
        once it was authenticated)."""
        if not self.enabled:
            return
        now = self._clock()
        buckets = [credential]
        tenant = self._tenant_of.get(credential)
        if tenant is not None:
            buckets.append(_tenant_bucket(tenant))
        for bucket in buckets:
            lease = self._leases.get(bucket)
            if lease is not None and lease.tokens == 0 and now < lease.refused_until:
                raise RateLimited(lease.refused_until - now)

    async def take(self, credential: str, tenant_id: str) -> None:
        """One token of the credential's bucket and one of its tenant's, or ``RateLimited``."""
        if not self.enabled:
            return
        self._tenant_of[credential] = tenant_id
        key_lease = await self._take_one(credential, self.key_limit)
        try:
            await self._take_one(_tenant_bucket(tenant_id), self.tenant_limit)
        except RateLimited:
            key_lease.tokens += 1  # not served: the token stays with this process
            raise

    async def _take_one(self, bucket: str, limit: Limit) -> _Lease:
        lease = self._lease(bucket)
        if lease.tokens == 0:
            async with lease.lock:  # one refill per bucket at a time in a process
                if lease.tokens == 0:
                    await self._refill(bucket, lease, limit)
        lease.tokens -= 1
        return lease

    async def _refill(self, bucket: str, lease: _Lease, limit: Limit) -> None:
        now = self._clock()
        if now < lease.refused_until:
            raise RateLimited(lease.refused_until - now)
        grant = await take_tokens(
            self._pool(),
            bucket,
            want=limit.lease,
            per_second=limit.per_second,
            burst=limit.burst,
        )
        if grant.granted == 0:
            # Asked again once a whole lease has refilled: a client hammering over its limit
            # costs one round trip per lease, not one per request.
            now = self._clock()
            lease.refused_until = now + limit.seconds_until(limit.lease, grant.left)
            raise RateLimited(limit.seconds_until(1, grant.left))
        lease.tokens = grant.granted

    def _lease(self, bucket: str) -> _Lease:
        now = self._clock()
        lease = self._leases.get(bucket)
        if lease is None:
            if len(self._leases) >= MANY:
                self._forget_idle(now)
            lease = self._leases[bucket] = _Lease()
        lease.used_at = now
        return lease

    def _forget_idle(self, now: float) -> None:
        for bucket, lease in list(self._leases.items()):
            if now - lease.used_at > FORGET_AFTER_SECONDS and not lease.lock.locked():
                del self._leases[bucket]
                self._tenant_of.pop(bucket, None)

    def _pool(self) -> AsyncEngine:
        if self._engine is None:
            self._engine = create_engine(
                self._database_url, pool_size=POOL_SIZE, isolation_level="AUTOCOMMIT"
            )
        return self._engine

    async def aclose(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None


def _tenant_bucket(tenant_id: str) -> str:
    return f"tenant:{tenant_id}"


@dataclass
class _LocalBucket:
    tokens: float
    updated_at: float


class AddressLimits:
    """Token buckets per client address, in this process only (nothing shared, no I/O)."""

    def __init__(self, limit: Limit, *, clock: Clock = time.monotonic) -> None:
        self.limit = limit
        self._clock = clock
        self._buckets: dict[str, _LocalBucket] = {}

    def wait(self, address: str) -> float:
        """Seconds until ``address`` may be served again; 0: now."""
        bucket = self._refilled(address)
        if bucket is None or bucket.tokens >= 1:
            return 0.0
        return self.limit.seconds_until(1, bucket.tokens)

    def charge(self, address: str) -> None:
        bucket = self._refilled(address)
        if bucket is None:
            if len(self._buckets) >= MANY:
                self._forget_full()
            bucket = self._buckets[address] = _LocalBucket(self.limit.burst, self._clock())
        bucket.tokens = max(0.0, bucket.tokens - 1)

    def _refilled(self, address: str) -> _LocalBucket | None:
        bucket = self._buckets.get(address)
        if bucket is not None:
            now = self._clock()
            elapsed = max(0.0, now - bucket.updated_at)
            bucket.tokens = min(self.limit.burst, bucket.tokens + elapsed * self.limit.per_second)
            bucket.updated_at = now
        return bucket

    def _forget_full(self) -> None:
        for address in list(self._buckets):
            bucket = self._refilled(address)
            if bucket is not None and bucket.tokens >= self.limit.burst:
                del self._buckets[address]
