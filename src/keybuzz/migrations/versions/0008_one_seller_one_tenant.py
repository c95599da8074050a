"""One Amazon seller account, one tenant: a unique index on the live connections' seller.

Revision ID: 0008_one_seller_one_tenant
Revises: 0007_browser_sessions
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_one_seller_one_tenant"
down_revision: str | None = "0007_browser_sessions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "uq_marketplace_connections_live_seller",
        "marketplace_connections",
        ["marketplace", "selling_partner_id"],
        unique=True,
        postgresql_where=sa.text(
            "selling_partner_id IS NOT NULL AND status NOT IN ('DISCONNECTED', 'PENDING')"
        ),
    )


def downgrade() -> None:
    op.drop_index("uq_marketplace_connections_live_seller", table_name="marketplace_connections")
