"""Alembic environment: migrations run on a sync psycopg connection, one process at a time."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine, pool, text

from keybuzz.db import Base, sync_url
from keybuzz.models import import_all_models

import_all_models()
target_metadata = Base.metadata
# Any number that no other code uses as an advisory lock key.
MIGRATION_LOCK_KEY = 7_246_119_301


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """procrastinate's tables come from its own schema script, not from our models."""
    return not (name or "").startswith(("procrastinate", "idx_procrastinate"))


def run_migrations_online() -> None:
    url = context.config.get_main_option("sqlalchemy.url") or os.environ.get("KEYBUZZ_DATABASE_URL")
    assert url, "set sqlalchemy.url (KEYBUZZ_DATABASE_URL) before running migrations"
    engine = create_engine(sync_url(url), poolclass=pool.NullPool)
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        try:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                compare_type=True,
                include_name=include_name,
            )
            with context.begin_transaction():
                context.run_migrations()
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
            connection.commit()


run_migrations_online()
