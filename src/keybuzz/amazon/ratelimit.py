"""Client-side token buckets that wait *before* sending, so Amazon never has to say 429.

Each bucket mirrors Amazon's bucket for one (connection, operation): it starts full, refills at
``rate`` up to ``burst``, and a request leaves only once a token is there. Waiters are served in
arrival order by one timer, re-armed whenever the rate changes (``x-amzn-RateLimit-Limit``), so
a queue of waiters never sleeps on a stale rate.

A request reaches Amazon a little after it leaves, and not always equally late: two requests
sent 1/rate apart can arrive closer together. The bucket therefore keeps ``JITTER_ALLOWANCE``
seconds' worth of tokens in hand. That costs those seconds once, at the start of a run, and
absorbs that much arrival jitter for the rest of it. The reserve stays under half the burst:
a waiting bucket must never be full, or a late timer would waste refill past the cap.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

from keybuzz.amazon.operations import SANDBOX_BUCKET, SANDBOX_PLAN, Operation, UsagePlan

Clock = Callable[[], float]
JITTER_ALLOWANCE = 0.5
_MIN_TIMER = 0.0005
_RATE_CHANGE = 0.01


class TokenBucket:
    def __init__(
        self,
        plan: UsagePlan,
        *,
        clock: Clock = time.monotonic,
        jitter_allowance: float = JITTER_ALLOWANCE,
    ) -> None:
        self.rate = plan.rate
        self.burst = plan.burst
        self._clock = clock
        self._jitter_allowance = jitter_allowance
        self._tokens = float(plan.burst)
        self._updated = clock()
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._timer: asyncio.TimerHandle | None = None

    @property
    def reserve(self) -> float:
        return min(self.rate * self._jitter_allowance, (self.burst - 1) / 2)

    @property
    def tokens(self) -> float:
        self._refill()
        return self._tokens

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    def _try_take(self) -> bool:
        self._refill()
        if self._tokens >= 1.0 + self.reserve:
            self._tokens -= 1.0
            return True
        return False

    def delay(self) -> float:
        """Seconds until the next request may leave."""
        self._refill()
        return max(0.0, (1.0 + self.reserve - self._tokens) / self.rate)

    async def acquire(self) -> None:
        if not self._waiters and self._try_take():
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._wake()
        try:
            await waiter
        except asyncio.CancelledError:
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

    def _wake(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        waiters = self._waiters
        while waiters:
            head = waiters[0]
            if head.done():
                waiters.popleft()
            elif self._try_take():
                waiters.popleft()
                head.set_result(None)
            else:
                break
        if waiters:
            loop = waiters[0].get_loop()
            self._timer = loop.call_later(max(self.delay(), _MIN_TIMER), self._wake)


class BucketSet:
    """One connection's buckets, one per operation (or one for everything on the sandbox)."""

    def __init__(self, *, sandbox: bool = False, clock: Clock = time.monotonic) -> None:
        self._sandbox = sandbox
        self._clock = clock
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
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(plan, clock=self._clock)
        return bucket
