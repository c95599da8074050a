"""Amazon connections: OAuth states, and the procrastinate job queue's schema.

Revision ID: 0003_connections
Revises: 0002_secrets
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from procrastinate.schema import SchemaManager

revision: str = "0003_connections"
down_revision: str | None = "0002_secrets"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# procrastinate ships no uninstall script: drop every object of its schema by name.
DROP_PROCRASTINATE = """
DO $$
DECLARE item record;
BEGIN
    FOR item IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname LIKE 'procrastinate%'
    LOOP
        EXECUTE format('DROP TABLE IF EXISTS %I CASCADE', item.relname);
    END LOOP;
    FOR item IN SELECT p.oid::regprocedure AS signature FROM pg_proc p
                JOIN pg_namespace n ON n.oid = p.pronamespace
                WHERE n.nspname = 'public' AND p.proname LIKE 'procrastinate%'
    LOOP
        EXECUTE format('DROP FUNCTION IF EXISTS %s CASCADE', item.signature);
    END LOOP;
    FOR item IN SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
                LEFT JOIN pg_class c ON c.oid = t.typrelid
                WHERE n.nspname = 'public' AND t.typname LIKE 'procrastinate%'
                  AND (t.typtype = 'e' OR (t.typtype = 'c' AND c.relkind = 'c'))
    LOOP
        EXECUTE format('DROP TYPE IF EXISTS %I CASCADE', item.typname);
    END LOOP;
END $$;
"""


def upgrade() -> None:
    op.create_table(
        "oauth_states",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.Column(
            "binding_hash",
            sa.String(length=64),
            nullable=False,
            comment="Hash of the cookie given to the browser that started the consent.",
        ),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("marketplace", sa.String(length=32), nullable=False),
        sa.Column("region", sa.String(length=8), nullable=False),
        sa.Column("return_path", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_oauth_states_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_states")),
        sa.UniqueConstraint("state_hash", name=op.f("uq_oauth_states_state_hash")),
    )
    op.create_index(op.f("ix_oauth_states_tenant_id"), "oauth_states", ["tenant_id"], unique=False)
    op.execute(SchemaManager.get_schema())


def downgrade() -> None:
    op.execute(DROP_PROCRASTINATE)
    op.drop_index(op.f("ix_oauth_states_tenant_id"), table_name="oauth_states")
    op.drop_table("oauth_states")
