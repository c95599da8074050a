"""The sync engine: backfill phases and counters, incremental sync watermarks, saved quotas,
how much each order's source told.

Revision ID: 0006_sync_engine
Revises: 0005_events_quarantine
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006_sync_engine"
down_revision: str | None = "0005_events_quarantine"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BACKFILL_PHASE = postgresql.ENUM(
    "COVERAGE", "ENRICHMENT", "DONE", name="backfill_phase", create_type=False
)
COUNTERS = ("items_stored", "orders_enriched", "quarantined")


def upgrade() -> None:
    op.add_column(
        "orders",
        sa.Column(
            "detail",
            sa.SmallInteger(),
            server_default=sa.text("0"),
            nullable=False,
            comment="How much the stored version's source told: 0 report, 1 v0, 2 v2026 (Detail).",
        ),
    )
    # Orders an API already enriched: told by v0 at least, which is what they may lack.
    op.execute("UPDATE orders SET detail = 1 WHERE enriched_at IS NOT NULL")
    BACKFILL_PHASE.create(op.get_bind())
    op.add_column(
        "backfill_jobs",
        sa.Column("phase", BACKFILL_PHASE, server_default="COVERAGE", nullable=False),
    )
    op.add_column(
        "backfill_jobs",
        sa.Column("purge", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )
    op.alter_column(
        "backfill_jobs", "orders_fetched", new_column_name="orders_stored", server_default="0"
    )
    for name in COUNTERS:
        op.add_column(
            "backfill_jobs",
            sa.Column(name, sa.Integer(), server_default=sa.text("0"), nullable=False),
        )
    op.add_column(
        "backfill_jobs",
        sa.Column("progress", sa.Float(), server_default=sa.text("0"), nullable=False),
    )
    op.add_column(
        "backfill_jobs", sa.Column("estimated_done_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "backfill_jobs",
        sa.Column(
            "last_error",
            postgresql.JSONB(astext_type=sa.Text()),
            nullable=True,
            comment="Why the job failed, as RFC 9457 problem details.",
        ),
    )
    op.add_column(
        "marketplace_connections",
        sa.Column(
            "synced_through",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="Incremental sync watermark: every change Amazon made before it is stored.",
        ),
    )
    op.add_column(
        "marketplace_connections",
        sa.Column("next_sync_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.add_column(
        "marketplace_connections",
        sa.Column(
            "sync_position",
            postgresql.JSONB(astext_type=sa.Text()),
            nullable=True,
            comment="Where an unfinished incremental sync resumes.",
        ),
    )
    op.add_column(
        "marketplace_connections",
        sa.Column(
            "quota_state",
            postgresql.JSONB(astext_type=sa.Text()),
            nullable=True,
            comment="The seller's rate-limit buckets, as the last job left them.",
        ),
    )


def downgrade() -> None:
    for name in ("quota_state", "sync_position", "next_sync_at", "synced_through"):
        op.drop_column("marketplace_connections", name)
    for name in ("last_error", "estimated_done_at", "progress", *COUNTERS, "purge", "phase"):
        op.drop_column("backfill_jobs", name)
    op.alter_column(
        "backfill_jobs", "orders_stored", new_column_name="orders_fetched", server_default=None
    )
    BACKFILL_PHASE.drop(op.get_bind())
    op.drop_column("orders", "detail")
