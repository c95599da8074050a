"""Row-level security, a second wall between tenants: the app's role and what it may do.

The service runs as ``keybuzz_app``: not a superuser, no BYPASSRLS, owning nothing. It reads and
writes every table (tables created by later migrations too, through default privileges) but
sees a tenant table's rows only for the tenant its transaction bound (``app.tenant_id``,
``keybuzz.db.bind_tenant``). The role that runs this migration owns the tables and is the
privileged path: its policy lets it through (the ``FORCE`` leaves no other way for an owner).

The few reads a request must make before it knows its tenant are functions run with the owner's
rights, each answering one question: whose API key, browser session or consent state this is,
and whether a seller account is held by another tenant.

Revision ID: 0009_row_level_security
Revises: 0008_one_seller_one_tenant
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_row_level_security"
down_revision: str | None = "0008_one_seller_one_tenant"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "keybuzz_app"  # keybuzz.db.APP_ROLE; a migration does not import the app's code

# Roles are the server's, not the database's: another database's migration may create it at
# the same moment (duplicate_object, or unique_violation from the catalog's index).
CREATE_APP_ROLE = f"""
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
        BEGIN
            CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE
                NOREPLICATION;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN NULL;
            WHEN insufficient_privilege THEN
                RAISE EXCEPTION 'role {APP_ROLE} is missing and % may not create it', current_user
                    USING HINT = 'CREATE ROLE {APP_ROLE} LOGIN PASSWORD ''...'' as an '
                        'administrator first (docs/database-roles.md)';
        END;
    END IF;
END $$
"""

# Enables, forces and writes the policies of one tenant table; later migrations that create a
# tenant table call it (SELECT keybuzz_isolate_tenant('new_table')), a test fails them if not.
CREATE_ISOLATE_TENANT = """
CREATE OR REPLACE FUNCTION keybuzz_isolate_tenant(tenant_table regclass) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', tenant_table);
    EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', tenant_table);
    EXECUTE format(
        'CREATE POLICY tenant_isolation ON %s'
        ' USING (tenant_id = current_setting(''app.tenant_id'', true))'
        ' WITH CHECK (tenant_id = current_setting(''app.tenant_id'', true))',
        tenant_table);
    EXECUTE format(
        'CREATE POLICY privileged_path ON %s TO %I USING (true) WITH CHECK (true)',
        tenant_table, current_user);
END $$
"""

TENANT_TABLES = """
SELECT c.relname FROM pg_class c
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')
ORDER BY c.relname
"""

# Each runs with its owner's rights (SECURITY DEFINER): the questions a request asks before it
# knows its tenant. A fixed search_path, temporary schema last, so no one can slip a table in.
PRIVILEGED_FUNCTIONS = {
    "keybuzz_tenant_of_api_key(key_hash text)": """
    RETURNS text LANGUAGE sql STABLE AS $$
        SELECT tenant_id FROM api_keys
        WHERE api_keys.key_hash = $1 AND revoked_at IS NULL
    $$""",
    "keybuzz_tenant_of_browser_session(token_hash text)": """
    RETURNS text LANGUAGE sql STABLE AS $$
        SELECT s.tenant_id FROM browser_sessions s
        JOIN api_keys k ON k.id = s.api_key_id AND k.tenant_id = s.tenant_id
        WHERE s.token_hash = $1 AND s.expires_at > now() AND k.revoked_at IS NULL
    $$""",
    "keybuzz_tenant_of_oauth_state(state_hash text)": """
    RETURNS text LANGUAGE sql STABLE AS $$
        SELECT tenant_id FROM oauth_states WHERE oauth_states.state_hash = $1
    $$""",
    "keybuzz_seller_held_elsewhere(selling_partner_id text, tenant text)": """
    RETURNS boolean LANGUAGE sql STABLE AS $$
        SELECT EXISTS (
            SELECT FROM marketplace_connections c
            WHERE c.selling_partner_id = $1 AND c.tenant_id <> $2
              AND c.status NOT IN ('DISCONNECTED', 'PENDING'))
    $$""",
}


def upgrade() -> None:
    bind = op.get_bind()
    schema = bind.execute(sa.text("SELECT quote_ident(current_schema())")).scalar_one()
    op.execute(CREATE_APP_ROLE)
    op.execute(f"GRANT USAGE ON SCHEMA {schema} TO {APP_ROLE}")
    for privileges, kind in (
        ("SELECT, INSERT, UPDATE, DELETE", "TABLES"),
        ("USAGE, SELECT, UPDATE", "SEQUENCES"),
    ):
        op.execute(f"GRANT {privileges} ON ALL {kind} IN SCHEMA {schema} TO {APP_ROLE}")
        op.execute(
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT {privileges} ON {kind} "
            f"TO {APP_ROLE}"
        )
    op.execute(f"REVOKE ALL ON alembic_version FROM {APP_ROLE}")
    op.execute(CREATE_ISOLATE_TENANT)
    op.execute(f"REVOKE ALL ON FUNCTION keybuzz_isolate_tenant(regclass) FROM PUBLIC, {APP_ROLE}")
    for table in bind.execute(sa.text(TENANT_TABLES)).scalars().all():
        op.execute(sa.text("SELECT keybuzz_isolate_tenant(:table)").bindparams(table=table))
    for signature, body in PRIVILEGED_FUNCTIONS.items():
        op.execute(
            f"CREATE OR REPLACE FUNCTION {signature} {body} "
            f"SECURITY DEFINER SET search_path = {schema}, pg_temp"
        )
        op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {APP_ROLE}")


def downgrade() -> None:
    bind = op.get_bind()
    schema = bind.execute(sa.text("SELECT quote_ident(current_schema())")).scalar_one()
    for signature in PRIVILEGED_FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS {signature}")
    for table in bind.execute(sa.text(TENANT_TABLES)).scalars().all():
        quoted = bind.execute(sa.text("SELECT quote_ident(:t)"), {"t": table}).scalar_one()
        op.execute(f"DROP POLICY IF EXISTS tenant_isolation ON {quoted}")
        op.execute(f"DROP POLICY IF EXISTS privileged_path ON {quoted}")
        op.execute(f"ALTER TABLE {quoted} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {quoted} DISABLE ROW LEVEL SECURITY")
    op.execute("DROP FUNCTION IF EXISTS keybuzz_isolate_tenant(regclass)")
    # The role is the server's and may serve other databases: only this one's grants go.
    for privileges, kind in (
        ("SELECT, INSERT, UPDATE, DELETE", "TABLES"),
        ("USAGE, SELECT, UPDATE", "SEQUENCES"),
    ):
        op.execute(
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} REVOKE {privileges} ON {kind} "
            f"FROM {APP_ROLE}"
        )
        op.execute(f"REVOKE ALL ON ALL {kind} IN SCHEMA {schema} FROM {APP_ROLE}")
    op.execute(f"REVOKE USAGE ON SCHEMA {schema} FROM {APP_ROLE}")
