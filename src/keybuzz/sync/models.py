from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from keybuzz.db import UUID7_DEFAULT, Base, TimestampMixin, pg_enum


class BackfillStatus(enum.StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


class BackfillPhase(enum.StrEnum):
    COVERAGE = "COVERAGE"
    """Every order, item and status of the window, from order reports."""
    ENRICHMENT = "ENRICHMENT"
    """Buyer, recipient, totals, deadlines and packages, newest orders first, from the APIs."""
    DONE = "DONE"


class BackfillJob(TimestampMixin, Base):
    """One request to pull a window of a tenant's marketplace orders, and its progress."""

    __tablename__ = "backfill_jobs"
    __table_args__ = (Index("ix_backfill_jobs_tenant_created", "tenant_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=UUID7_DEFAULT)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    marketplace: Mapped[str] = mapped_column(String(32))
    status: Mapped[BackfillStatus] = mapped_column(pg_enum(BackfillStatus, "backfill_status"))
    phase: Mapped[BackfillPhase] = mapped_column(
        pg_enum(BackfillPhase, "backfill_phase"), server_default=BackfillPhase.COVERAGE.value
    )
    days: Mapped[int]
    purge: Mapped[bool] = mapped_column(server_default=text("false"))
    window_start: Mapped[dt.datetime]
    window_end: Mapped[dt.datetime]
    orders_stored: Mapped[int] = mapped_column(server_default=text("0"))
    items_stored: Mapped[int] = mapped_column(server_default=text("0"))
    orders_enriched: Mapped[int] = mapped_column(server_default=text("0"))
    quarantined: Mapped[int] = mapped_column(server_default=text("0"))
    progress: Mapped[float] = mapped_column(server_default=text("0"))
    estimated_done_at: Mapped[dt.datetime | None]
    checkpoint: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    last_error: Mapped[dict[str, Any] | None] = mapped_column(
        JSONB, comment="Why the job failed, as RFC 9457 problem details."
    )
    queue_job_id: Mapped[int | None] = mapped_column(BigInteger)
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]
