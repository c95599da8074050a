from __future__ import annotations

import datetime as dt

from sqlalchemy import Double, Text
from sqlalchemy.orm import Mapped, mapped_column

from keybuzz.db import Base


class RateLimitBucket(Base):
    """One token bucket of the API's rate limits, shared by every API process.

    Infrastructure, not tenant data: keyed by ``bucket_key`` (``key:<hash>``, ``session:<hash>``,
    ``tenant:<id>``), never by a ``tenant_id`` column. UNLOGGED: a crash empties the table, which
    refills every bucket once. Written only by ``keybuzz.ratelimits.repository.TAKE_TOKENS``.
    """

    __tablename__ = "rate_limit_buckets"
    __table_args__ = {"prefixes": ["UNLOGGED"]}  # noqa: RUF012

    bucket_key: Mapped[str] = mapped_column(Text, primary_key=True)
    tokens: Mapped[float] = mapped_column(Double)
    """What the bucket held at ``updated_at``; below 0: tokens taken ahead of their time."""
    granted: Mapped[int]
    """Tokens the last take got (how the statement reports it)."""
    updated_at: Mapped[dt.datetime]
