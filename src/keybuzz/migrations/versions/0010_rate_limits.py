"""The API's rate limits: token buckets shared by every API process (keybuzz.ratelimits).

UNLOGGED: the buckets are not worth a WAL write per lease; a crash empties the table, which
gives every client a full bucket once, and a replica never sees it. Keyed by a text
``bucket_key`` (``key:…``, ``session:…``, ``tenant:…``): infrastructure, not tenant data.

Revision ID: 0010_rate_limits
Revises: 0009_row_level_security
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010_rate_limits"
down_revision: str | None = "0009_row_level_security"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE UNLOGGED TABLE rate_limit_buckets (
            bucket_key text NOT NULL,
            tokens double precision NOT NULL,
            granted integer NOT NULL,
            updated_at timestamptz NOT NULL,
            CONSTRAINT pk_rate_limit_buckets PRIMARY KEY (bucket_key)
        )
        """
    )


def downgrade() -> None:
    op.drop_table("rate_limit_buckets")
