"""Amazon's token buckets: one per (seller, operation), ``rate`` tokens a second up to ``burst``.

``rate_scale`` multiplies every rate and leaves bursts alone, so a scaled run keeps Amazon's
proportions. The clock is injected: tests move it instead of sleeping.
"""

from __future__ import annotations

from dataclasses import dataclass

from keybuzz.simulator.clock import TimeSource
from keybuzz.simulator.operations import usage_plan
from keybuzz.simulator.spec import UsagePlan


@dataclass(slots=True)
class TokenBucket:
    rate: float
    burst: int
    tokens: float
    updated: float

    def take(self, now: float) -> bool:
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(float(self.burst), self.tokens + elapsed * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class RateLimiter:
    def __init__(self, clock: TimeSource, rate_scale: float = 1.0) -> None:
        self._clock = clock
        self.rate_scale = rate_scale
        self._buckets: dict[tuple[str, str], TokenBucket] = {}

    def plan(self, operation: str) -> UsagePlan:
        plan = usage_plan(operation)
        return UsagePlan(rate=plan.rate * self.rate_scale, burst=plan.burst)

    def try_acquire(self, seller_id: str, operation: str) -> bool:
        key = (seller_id, operation)
        bucket = self._buckets.get(key)
        if bucket is None:
            plan = self.plan(operation)
            bucket = TokenBucket(plan.rate, plan.burst, float(plan.burst), self._clock())
            self._buckets[key] = bucket
        return bucket.take(self._clock())

    def reset(self) -> None:
        self._buckets.clear()


def rate_header(plan: UsagePlan) -> str:
    return f"{plan.rate:g}"
