"""Per-API-key and per-tenant request limits, shared by every API process through PostgreSQL.

Each limit is a token bucket (a rate per second and a burst) kept in the UNLOGGED table
``rate_limit_buckets``. A process does not ask PostgreSQL for every request: it takes a *lease*
of several tokens at once (``Limit.lease``: a tenth of the burst, or what a tenth of a second of
the rate allows, whichever is smaller) and serves requests from it; only a request that finds
its lease empty makes the round trip, on a small pool of its own (never the request's
connection). Tokens taken are spent: over any stretch of time the cluster serves at most the
burst plus the rate times that time plus one lease per process.

Over its limit, a request is delayed rather than refused, as nginx's ``limit_req`` does: a
bucket may go into debt by what its rate refills in ``KEYBUZZ_RATE_LIMIT_MAX_DELAY_SECONDS``, a
token taken that way comes due when the rate has paid it back, and the request waits until then
(an ``asyncio`` sleep, holding no database connection). A request whose token would come due
later is refused with 429, but only once that delay has passed: a client that ignores
``Retry-After`` and asks again at once gets one answer per connection per delay, not as many as
the server can refuse. A bucket found beyond its debt is remembered locally until a lease's
worth is within reach again, so those refusals cost no round trip.

A credential this process has served before takes its tokens (and waits) *before* it is
authenticated: its tenant is known, and nothing holds a connection yet.

Refused authentications are limited per client address in each process alone
(``AddressLimits``): they cost nothing to count and must not cost a database round trip each.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import NoReturn

from sqlalchemy.ext.asyncio import AsyncEngine

from keybuzz.config import Settings
from keybuzz.db import create_engine
from keybuzz.errors import RateLimited
from keybuzz.ratelimits.repository import take_tokens

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
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
    due: deque[float] = field(default_factory=deque)
    """When each token this process holds comes due (its clock), soonest first."""
    refused_until: float = 0.0
    """Until then the bucket is not asked again: it was beyond its debt."""
    retry_at: float = 0.0
    """When a request could be served again (delayed at most the maximum delay)."""
    used_at: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class _Refused(Exception):
    def __init__(self, retry_at: float) -> None:
        self.retry_at = retry_at


class RateLimiter:
    """A process's share of the cluster's buckets: its leases, and the pool to refill them.

    ``credential`` names what authenticated a request (``key:<hash>`` for an API key,
    ``session:<hash>`` for the Orders page's session cookie); it has the key limit, its tenant
    the tenant limit, and a request takes one token of each.
    """

    def __init__(
        self,
        settings: Settings,
        database_url: str,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.enabled = settings.rate_limit_enabled
        self.key_limit = key_limit(settings)
        self.tenant_limit = tenant_limit(settings)
        self.max_delay = settings.rate_limit_max_delay_seconds
        self._database_url = database_url
        self._engine: AsyncEngine | None = None
        self._clock = clock
        self._sleep = sleep
        self._leases: dict[str, _Lease] = {}
        self._tenant_of: dict[str, str] = {}

    async def refuse_if_over(self, credential: str) -> None:
        """Before authentication, with no database: a credential whose own bucket, or whose
        tenant's, this process found beyond its debt a moment ago is refused again (after the
        maximum delay). Only the holder of that very credential can be refused this way (its
        bucket was named after it once it was authenticated)."""
        if not self.enabled:
            return
        retry_at = self._refused(credential, self._tenant_of.get(credential))
        if retry_at is not None:
            await self._tarpit(retry_at)

    async def admit(self, credential: str) -> bool:
        """Before authentication: a credential this process has served before takes its tokens
        now (waiting for them, or refused), while the request holds no database connection.
        False: its tenant is not known here yet, and ``take`` must follow authentication."""
        if not self.enabled:
            return True
        tenant_id = self._tenant_of.get(credential)
        if tenant_id is None:
            return False
        await self.take(credential, tenant_id)
        return True

    def forget(self, credential: str) -> None:
        """The credential was refused (unknown, revoked, expired): it no longer takes tokens of
        the tenant it had before its authentication."""
        self._tenant_of.pop(credential, None)

    async def take(self, credential: str, tenant_id: str, *, may_wait: bool = True) -> None:
        """One token of the credential's bucket and one of its tenant's, waiting until both
        have come due; else ``RateLimited``, after the maximum delay. ``may_wait=False`` (the
        request holds a database connection): ``RateLimited`` at once rather than wait."""
        if not self.enabled:
            return
        self._tenant_of[credential] = tenant_id
        try:
            retry_at = self._refused(credential, tenant_id)
            if retry_at is not None:
                raise _Refused(retry_at)
            taken = await self._take_both(credential, _tenant_bucket(tenant_id))
        except _Refused as refused:
            if may_wait:
                await self._tarpit(refused.retry_at)
            raise RateLimited(refused.retry_at - self._clock()) from None
        wait = max(due for _, due in taken) - self._clock()
        if wait <= 0:
            return
        if not may_wait:
            for lease, due in reversed(taken):
                lease.due.appendleft(due)  # not served: the tokens stay with this process
            raise RateLimited(wait)
        await self._sleep(wait)

    async def _take_both(self, credential: str, tenant_bucket: str) -> list[tuple[_Lease, float]]:
        key = await self._take_one(credential, self.key_limit)
        try:
            tenant = await self._take_one(tenant_bucket, self.tenant_limit)
        except _Refused:
            key[0].due.appendleft(key[1])  # not served: the token stays with this process
            raise
        return [key, tenant]

    async def _take_one(self, bucket: str, limit: Limit) -> tuple[_Lease, float]:
        lease = self._lease(bucket)
        if not lease.due:
            async with lease.lock:  # one refill per bucket at a time in a process
                if not lease.due:
                    await self._refill(bucket, lease, limit)
        return lease, lease.due.popleft()

    async def _refill(self, bucket: str, lease: _Lease, limit: Limit) -> None:
        if self._clock() < lease.refused_until:
            raise _Refused(lease.retry_at)
        debt = limit.per_second * self.max_delay
        grant = await take_tokens(
            self._pool(),
            bucket,
            want=limit.lease,
            per_second=limit.per_second,
            burst=limit.burst,
            debt=debt,
        )
        now = self._clock()
        if grant.granted == 0:
            # Asked again once a whole lease is within reach: a client hammering over its limit
            # costs one round trip per lease, not one per request.
            reachable = grant.left + debt
            lease.refused_until = now + limit.seconds_until(limit.lease, reachable)
            lease.retry_at = now + limit.seconds_until(1, reachable)
            raise _Refused(lease.retry_at)
        # Token n of the grant comes due once the bucket as it stood before the take held n.
        before = grant.left + grant.granted
        lease.due.extend(now + limit.seconds_until(n, before) for n in range(1, grant.granted + 1))

    def _refused(self, credential: str, tenant_id: str | None) -> float | None:
        """When the refused credential may come back, if this process refuses it now."""
        now = self._clock()
        buckets = [credential] if tenant_id is None else [credential, _tenant_bucket(tenant_id)]
        refused = [
            lease.retry_at
            for bucket in buckets
            if (lease := self._leases.get(bucket)) is not None
            and not lease.due
            and now < lease.refused_until
        ]
        return max(refused, default=None)

    async def _tarpit(self, retry_at: float) -> NoReturn:
        """Refuse, once the maximum delay has passed."""
        await self._sleep(self.max_delay)
        raise RateLimited(retry_at - self._clock())

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
