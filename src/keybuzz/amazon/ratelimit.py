"""Client-side token buckets that wait *before* sending, so Amazon never has to say 429.

Each bucket mirrors Amazon's bucket for one (connection, operation): it starts full, refills at
``rate`` up to ``burst``, and a request leaves only once a token is there. Waiters are served by
priority, then in arrival order, by one timer, re-armed whenever the rate changes
(``x-amzn-RateLimit-Limit``), so a queue of waiters never sleeps on a stale rate.

Why a request may still find Amazon's bucket empty, and what prevents it. A request reaches
Amazon a little after it leaves, and not always equally late: on a loaded machine the
simulator (or a congested network) can hold requests back and then take them in a bunch.
While Amazon's bucket waits for them it may fill up to its burst and lose refill that ours
counted, so after the bunch it holds fewer tokens than ours thinks. Two rules bound that loss:

- **A reserve.** A request leaves only if ``1 + reserve`` tokens are there, so ours never
  spends its last ``reserve`` tokens: ``JITTER_ALLOWANCE`` seconds' worth (at least one token,
  at most half the burst — a waiting bucket must never be full, or a late timer would waste
  refill past the cap). It costs ``reserve / rate`` seconds once per bucket and run.
- **At most ``max_in_flight = floor(reserve)`` requests in flight** (sent through
  ``request()``, not yet answered). Amazon's bucket can only be behind ours by requests that
  left before a moment and arrive after it, i.e. requests in flight; with at most
  ``floor(reserve)`` of them, it always holds at least ``reserve - max_in_flight >= 0`` tokens
  when one arrives, **however late and bunched the arrivals**: no 429, by construction, as
  long as nobody else spends the seller's quota and the rate is Amazon's. The cap costs no
  throughput while answers come back within ``max_in_flight / rate`` (0.14 s at 100 rps, far
  longer at Amazon's own rates); a slower server is the bottleneck anyway.

Pacing a little under the advertised rate (so that Amazon's bucket fills back up) repays lost
tokens only over time and bounds no single bunch: it would give up throughput without the
guarantee, so it is not done. A 429 anyway (another app on the seller's quota, a lower plan)
drains the bucket: Amazon's is empty whatever ours thought.

The engine schedules work from ``next_token_in`` (without waiting), may make a call give up
instead of waiting (``max_wait``: ``AmazonQuotaExhausted``), and carries a connection's buckets
from one worker process to the next as JSON (``BucketSet.snapshot`` / ``restore``, wall-clock
time: monotonic clocks differ across processes; the machines' clocks must agree, NTP).
"""

from __future__ import annotations

import asyncio
import enum
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from keybuzz.amazon.errors import AmazonQuotaExhausted
from keybuzz.amazon.operations import SANDBOX_BUCKET, SANDBOX_PLAN, Operation, UsagePlan

Clock = Callable[[], float]
JITTER_ALLOWANCE = 0.5
_MIN_TIMER = 0.0005
_RATE_CHANGE = 0.01


class Priority(enum.IntEnum):
    """Who goes first among the requests of one connection waiting for one bucket."""

    INTERACTIVE = 0
    """Someone waits for the answer (refresh one order)."""
    SYNC = 1
    """Keeping orders current (incremental sync); the default."""
    BACKFILL = 2
    """History: goes when nothing more urgent waits."""


@dataclass(slots=True)
class _Waiter:
    future: asyncio.Future[None]
    holds_slot: bool


class TokenBucket:
    def __init__(
        self,
        plan: UsagePlan,
        *,
        clock: Clock = time.monotonic,
        jitter_allowance: float = JITTER_ALLOWANCE,
    ) -> None:
        """``jitter_allowance=0`` (tests of exact timing only) keeps no reserve at all."""
        self.rate = plan.rate
        self.burst = plan.burst
        self._clock = clock
        self._jitter_allowance = jitter_allowance
        self._tokens = float(plan.burst)
        self._updated = clock()
        self._queues: tuple[deque[_Waiter], ...] = tuple(deque() for _ in Priority)
        self._timer: asyncio.TimerHandle | None = None
        self.in_flight = 0

    @property
    def reserve(self) -> float:
        if self._jitter_allowance <= 0:
            return 0.0
        wanted = max(1.0, min(self.rate * self._jitter_allowance, (self.burst - 1) / 2))
        return min(wanted, float(max(self.burst - 1, 0)))

    @property
    def max_in_flight(self) -> int:
        """Requests that may be sent and not yet answered (``request()``): no more than the
        reserve covers, at least one."""
        return max(1, math.floor(self.reserve))

    @property
    def tokens(self) -> float:
        self._refill()
        return self._tokens

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    def _try_take(self, holds_slot: bool) -> bool:
        if holds_slot and self.in_flight >= self.max_in_flight:
            return False
        self._refill()
        if self._tokens >= 1.0 + self.reserve:
            self._tokens -= 1.0
            if holds_slot:
                self.in_flight += 1
            return True
        return False

    def _waiting(self, priority: Priority) -> int:
        """Waiters that would go before a new one of ``priority``."""
        return sum(
            1 for queue in self._queues[: priority + 1] for w in queue if not w.future.done()
        )

    def delay(self) -> float:
        """Seconds until the bucket holds a token for the next request (waiters aside)."""
        self._refill()
        return max(0.0, (1.0 + self.reserve - self._tokens) / self.rate)

    def next_token_in(self, priority: Priority = Priority.SYNC) -> float:
        """Seconds until a request of ``priority`` asked now would get its token, the waiters
        that go before it served first; 0 if at once. Takes nothing, waits for nothing."""
        self._refill()
        needed = self._waiting(priority) + 1.0 + self.reserve - self._tokens
        return max(0.0, needed / self.rate)

    async def acquire(
        self, *, priority: Priority = Priority.SYNC, max_wait: float | None = None
    ) -> None:
        """Wait for a token. ``max_wait``: raise ``AmazonQuotaExhausted`` at once instead if
        the token is further away than that."""
        await self._acquire(priority, max_wait, holds_slot=False)

    @asynccontextmanager
    async def request(
        self, *, priority: Priority = Priority.SYNC, max_wait: float | None = None
    ) -> AsyncIterator[None]:
        """Wait for a token and an in-flight slot; send and read the answer inside the block.
        The slot is free again when the block ends."""
        await self._acquire(priority, max_wait, holds_slot=True)
        try:
            yield
        finally:
            self.in_flight -= 1
            self._wake()

    async def _acquire(self, priority: Priority, max_wait: float | None, holds_slot: bool) -> None:
        if max_wait is not None:
            wait = self.next_token_in(priority)
            if wait > max_wait:
                raise AmazonQuotaExhausted(
                    f"the next request may go in {wait:.1f} s", retry_after=wait
                )
        if self._head() is None and self._try_take(holds_slot):
            return
        waiter = _Waiter(asyncio.get_running_loop().create_future(), holds_slot)
        self._queues[priority].append(waiter)
        self._wake()
        try:
            await waiter.future
        except asyncio.CancelledError:
            if waiter.future.done() and not waiter.future.cancelled():
                # Granted just as it was cancelled: give the token and the slot back.
                self._tokens = min(float(self.burst), self._tokens + 1.0)
                if holds_slot:
                    self.in_flight -= 1
            self._wake()
            raise

    def set_rate(self, rate: float) -> None:
        """Adopt the rate Amazon reports; waiters are rescheduled at once."""
        if rate <= 0 or abs(rate - self.rate) <= self.rate * _RATE_CHANGE:
            return
        self._refill()
        self.rate = rate
        self._wake()

    def drain(self) -> None:
        """Amazon said 429: its bucket is empty whatever ours thought."""
        self._refill()
        self._tokens = min(self._tokens, 0.0)
        self._wake()

    def snapshot(self) -> BucketState:
        """Its state now (tokens refilled up to now)."""
        self._refill()
        return BucketState(rate=self.rate, burst=self.burst, tokens=self._tokens)

    def restore(self, state: BucketState, elapsed: float) -> None:
        """Adopt a state saved ``elapsed`` seconds ago (refilled for that time). A bucket that
        has been used here meanwhile keeps the lower count: never more tokens than either
        knows of."""
        self._refill()
        self.rate = state.rate
        saved = min(float(self.burst), state.tokens + max(0.0, elapsed) * state.rate)
        self._tokens = min(self._tokens, saved)
        self._wake()

    def _head(self) -> _Waiter | None:
        for queue in self._queues:
            while queue and queue[0].future.done():
                queue.popleft()
            if queue:
                return queue[0]
        return None

    def _wake(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while (head := self._head()) is not None:
            if not self._try_take(head.holds_slot):
                break
            head.future.set_result(None)
        if head is not None and not (head.holds_slot and self.in_flight >= self.max_in_flight):
            # Waiting for a token (a slot comes free through ``request`` ending, which wakes).
            loop = head.future.get_loop()
            self._timer = loop.call_later(max(self.delay(), _MIN_TIMER), self._wake)


class BucketState(BaseModel):
    """One bucket as saved: Amazon's rate and burst as last known, the tokens it held."""

    model_config = ConfigDict(frozen=True)

    rate: float = Field(gt=0)
    burst: int = Field(ge=1)
    tokens: float


class BucketSnapshot(BaseModel):
    """A connection's buckets as of a wall-clock time (epoch seconds): JSON that another process
    restores (``model_dump(mode="json")``)."""

    model_config = ConfigDict(frozen=True)

    as_of: float
    buckets: dict[str, BucketState] = Field(default_factory=dict)


class BucketSet:
    """One connection's buckets, one per operation (or one for everything on the sandbox)."""

    def __init__(
        self,
        *,
        sandbox: bool = False,
        clock: Clock = time.monotonic,
        wall_clock: Clock = time.time,
    ) -> None:
        """``clock`` (monotonic) paces the buckets; ``wall_clock`` (epoch seconds) dates the
        snapshots that travel between processes."""
        self._sandbox = sandbox
        self._clock = clock
        self._wall_clock = wall_clock
        self._buckets: dict[str, TokenBucket] = {}

    def bucket(self, operation: Operation) -> TokenBucket:
        key, plan = (
            (SANDBOX_BUCKET, SANDBOX_PLAN)
            if self._sandbox
            else (
                operation.name,
                operation.plan,
            )
        )
        return self._named(key, plan)

    def _named(self, key: str, plan: UsagePlan) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(plan, clock=self._clock)
        return bucket

    def snapshot(self) -> BucketSnapshot:
        """Every bucket used so far, as of now."""
        return BucketSnapshot(
            as_of=self._wall_clock(),
            buckets={key: bucket.snapshot() for key, bucket in self._buckets.items()},
        )

    def restore(self, snapshot: BucketSnapshot | Mapping[str, Any]) -> None:
        """Take over the buckets of a snapshot (from another process, or an earlier run),
        refilled for the time since it was taken."""
        saved = BucketSnapshot.model_validate(snapshot)
        elapsed = self._wall_clock() - saved.as_of
        for key, state in saved.buckets.items():
            self._named(key, UsagePlan(state.rate, state.burst)).restore(state, elapsed)
