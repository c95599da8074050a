"""Date windows the way Orders searches want them (spapi.md §1.1, §2.3).

Exactly one of ``createdAfter`` / ``lastUpdatedAfter``; the ``*Before`` bound must be at least two
minutes before the request reaches Amazon. A bound closer to now than ``LATEST_BEFORE`` (two
minutes plus a margin for clock skew) is pulled back to it, so callers may pass "now".
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from pydantic import AwareDatetime, BaseModel, ConfigDict, model_validator

WallClock = Callable[[], datetime]
AMAZON_DELAY = timedelta(minutes=2)
"""Amazon's rule: a search's upper bound is at least this far before the request."""
LATEST_BEFORE = AMAZON_DELAY + timedelta(seconds=10)


def utcnow() -> datetime:
    return datetime.now(UTC)


def amazon_time(moment: datetime) -> str:
    """ISO 8601 in UTC, whole seconds: ``2026-05-01T10:00:00Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Window(BaseModel):
    """A created-or-updated window, with the upper bound already made legal."""

    model_config = ConfigDict(frozen=True)

    created_after: AwareDatetime | None = None
    created_before: AwareDatetime | None = None
    last_updated_after: AwareDatetime | None = None
    last_updated_before: AwareDatetime | None = None

    @model_validator(mode="after")
    def _one_family(self) -> Window:
        created = self.created_after is not None or self.created_before is not None
        updated = self.last_updated_after is not None or self.last_updated_before is not None
        if created and updated:
            raise ValueError("give created_* or last_updated_* bounds, not both")
        if created and self.created_after is None:
            raise ValueError("created_before needs created_after")
        if updated and self.last_updated_after is None:
            raise ValueError("last_updated_before needs last_updated_after")
        return self

    @property
    def is_set(self) -> bool:
        return self.created_after is not None or self.last_updated_after is not None

    @property
    def after(self) -> datetime | None:
        return self.created_after or self.last_updated_after

    @property
    def before(self) -> datetime | None:
        return self.created_before or self.last_updated_before

    def legal(self, now: datetime) -> Window:
        """The same window with its upper bound no later than ``now - LATEST_BEFORE``."""
        latest = now - LATEST_BEFORE
        if self.created_before is not None and self.created_before > latest:
            return self.model_copy(update={"created_before": latest})
        if self.last_updated_before is not None and self.last_updated_before > latest:
            return self.model_copy(update={"last_updated_before": latest})
        return self

    def is_empty(self, now: datetime) -> bool:
        """No order can match yet: Amazon would refuse the request (after > before).

        Without an upper bound Amazon applies its own now - 2 minutes, so the skew margin of
        ``LATEST_BEFORE`` has no place here: with it, a sync's watermark (the bound Amazon echoed,
        its now - 2 minutes) looked empty for 10 s, and a sync every few seconds skipped Amazon
        every other time. A lower bound Amazon echoed is never later than its now - 2 minutes."""
        after = self.after
        if after is None:
            return False
        before = self.before or now - AMAZON_DELAY
        return after > before

    def params(self, names: tuple[str, str, str, str]) -> list[tuple[str, str]]:
        """Query parameters, given the API's four names (created after/before, updated ...)."""
        values = (
            self.created_after,
            self.created_before,
            self.last_updated_after,
            self.last_updated_before,
        )
        return [(name, amazon_time(v)) for name, v in zip(names, values, strict=True) if v]
