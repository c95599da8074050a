"""Bounded, capped, jittered exponential backoff, and the one retry loop the SP-API and LWA calls
share."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import httpx

from keybuzz.amazon.errors import AmazonError, AmazonUnavailable

logger = logging.getLogger("keybuzz.amazon")

T = TypeVar("T")
# Worth another try: the same request may well succeed a moment later.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
TRANSIENT_ERRORS = (httpx.TimeoutException, httpx.TransportError)


def retryable(status: int) -> bool:
    """An HTTP status worth another try (any 5xx included)."""
    return status in RETRYABLE_STATUSES or status >= 500


@dataclass(frozen=True, slots=True)
class Failure:
    """A try that failed in a way worth another try."""

    problem: str
    """What went wrong, for the log and the final error: never a token or personal data."""
    error: type[AmazonError] = AmazonUnavailable
    """Raised once no try is left."""
    throttled: bool = False
    """A 429. The caller's drained bucket already makes the next try wait for a token, so the
    first retry goes without backoff; repeated 429s back off like other failures."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 8
    """Tries per call, the first one included."""
    base_delay: float = 0.5
    max_delay: float = 20.0

    def backoff(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1, 2, ...): half fixed, half random."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** (retry - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    async def run(self, label: str, attempt: Callable[[int], Awaitable[T | Failure]]) -> T:
        """The result of ``attempt(1)``, ``attempt(2)``, ... (each returns a result, a
        ``Failure`` or raises), at most ``attempts`` tries, backing off in between. After the
        last failure, raises its ``error``: ``"<label>: <problem> after <n> tries"`` (``still
        throttled`` for a 429)."""
        number = throttles = failures = 0
        while True:
            number += 1
            outcome = await attempt(number)
            if not isinstance(outcome, Failure):
                return outcome
            if number >= self.attempts:
                reason = "still throttled" if outcome.throttled else outcome.problem
                raise outcome.error(f"{label}: {reason} after {self.attempts} tries")
            if outcome.throttled:
                throttles += 1
                delay = self.backoff(throttles - 1) if throttles > 1 else 0.0
            else:
                failures += 1
                delay = self.backoff(failures)
            log = logger.warning if outcome.throttled else logger.info
            log(
                "%s: %s (try %d of %d), retrying in %.2f s",
                label,
                outcome.problem,
                number,
                self.attempts,
                delay,
            )
            await asyncio.sleep(delay)


DEFAULT_RETRY = RetryPolicy()
