"""The order search runs with its owner's rights, on the transaction's own tenant.

Under row-level security PostgreSQL applies a tenant table's policy before any condition that is
not leakproof, and LIKE is not: a search by buyer name could not use the trigram index
(``ix_orders_search_text_trgm``) and scanned the tenant's whole history (2 s a search instead of
50 ms at 1,000,000 orders). ``keybuzz_orders_matching`` runs as the owner, whose policy lets it
through, so the index is used; it takes its tenant from ``app.tenant_id``, the setting the
request's credential check bound, never from an argument: it finds nothing of another tenant.

Revision ID: 0011_search_under_rls
Revises: 0010_rate_limits
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_search_under_rls"
down_revision: str | None = "0010_rate_limits"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "keybuzz_app"  # keybuzz.db.APP_ROLE; a migration does not import the app's code
SIGNATURE = "keybuzz_orders_matching(contains text, sku_prefix text)"
BODY = """
RETURNS SETOF uuid LANGUAGE plpgsql STABLE ROWS 100 AS $$
BEGIN
    -- EXECUTE plans with the patterns' values: a prefix pattern can then use the SKU index.
    RETURN QUERY EXECUTE
        'SELECT t.id FROM orders t'
        ' WHERE t.tenant_id = current_setting(''app.tenant_id'', true) AND t.search_text LIKE $1'
        ' UNION'
        ' SELECT s.order_id FROM order_items s'
        ' WHERE s.tenant_id = current_setting(''app.tenant_id'', true)'
        ' AND lower(s.sku) LIKE $2'
        USING contains, sku_prefix;
END
$$"""


def upgrade() -> None:
    schema = op.get_bind().execute(sa.text("SELECT quote_ident(current_schema())")).scalar_one()
    op.execute(
        f"CREATE OR REPLACE FUNCTION {SIGNATURE} {BODY} "
        f"SECURITY DEFINER SET search_path = {schema}, pg_temp"
    )
    op.execute(f"REVOKE ALL ON FUNCTION {SIGNATURE} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {SIGNATURE} TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS keybuzz_orders_matching(text, text)")
