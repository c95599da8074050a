"""The simulator's clock: wall time plus an offset that tests can move forward (or back)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

TimeSource = Callable[[], float]


class SimClock:
    def __init__(self, source: TimeSource = time.time) -> None:
        self._source = source
        self.offset = 0.0

    def time(self) -> float:
        return self._source() + self.offset

    def now(self) -> int:
        """Whole epoch seconds, the resolution of every timestamp the simulator shows."""
        return int(self.time())

    def advance(self, seconds: float) -> None:
        self.offset += seconds


def iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(value: str) -> float | None:
    """ISO 8601 date or date-time -> epoch seconds (UTC when no offset), None when invalid."""
    text = value.strip()
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()
