"""Bounded, capped, jittered exponential backoff, shared by the SP-API and LWA calls."""

from __future__ import annotations

import random
from dataclasses import dataclass

import httpx

# Worth another try: the same request may well succeed a moment later.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
TRANSIENT_ERRORS = (httpx.TimeoutException, httpx.TransportError)


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


DEFAULT_RETRY = RetryPolicy()
