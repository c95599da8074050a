"""The SLA status is computed when read, never stored; every table's ids are UUIDv7.

Revision ID: 0004_one_sla_rule_uuid7_ids
Revises: 0003_connections
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004_one_sla_rule_uuid7_ids"
down_revision: str | None = "0003_connections"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES_WITH_RANDOM_IDS = ("api_keys", "marketplace_connections", "oauth_states", "backfill_jobs")
SLA_STATUS = postgresql.ENUM("OK", "AT_RISK", "BREACHED", name="sla_status", create_type=False)


def upgrade() -> None:
    op.drop_column("orders", "sla_status")
    SLA_STATUS.drop(op.get_bind())
    for table in TABLES_WITH_RANDOM_IDS:
        op.alter_column(table, "id", server_default=sa.text("keybuzz_uuid7()"))


def downgrade() -> None:
    for table in TABLES_WITH_RANDOM_IDS:
        op.alter_column(table, "id", server_default=None)
    SLA_STATUS.create(op.get_bind())
    op.add_column(
        "orders",
        sa.Column("sla_status", SLA_STATUS, server_default="OK", nullable=False),
    )
