from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from alembic import command
from alembic.util.exc import CommandError

from keybuzz.db import alembic_config, libpq_url, uuid7, uuid7_hexes

START_EMBEDDED = (
    "import sys; from pathlib import Path; from keybuzz.db import start_embedded_postgres; "
    "print(start_embedded_postgres(Path(sys.argv[1]), 'keybuzz'))"
)


def _start_in_child(pgdata: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", START_EMBEDDED, str(pgdata)],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


@pytest.mark.slow
def test_the_embedded_server_is_created_reused_and_stopped_with_its_process(
    tmp_path: Path,
) -> None:
    pgdata = tmp_path / "pgdata"

    first_url = _start_in_child(pgdata)
    created = (pgdata / "PG_VERSION").stat().st_mtime_ns
    assert not (pgdata / "postmaster.pid").exists(), "the server outlived its process"
    second_url = _start_in_child(pgdata)

    assert first_url == second_url
    assert (pgdata / "PG_VERSION").stat().st_mtime_ns == created
    assert not (pgdata / "postmaster.pid").exists()


@pytest.mark.slow
def test_keybuzz_migrate_runs_on_the_embedded_server_by_default(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYBUZZ_")}
    env["KEYBUZZ_DATA_DIR"] = str(tmp_path / "state")
    keybuzz = [sys.executable, "-c", "from keybuzz.cli import main; main()"]

    migrated = subprocess.run([*keybuzz, "migrate"], env=env, capture_output=True, text=True)
    created = subprocess.run(
        [*keybuzz, "tenants", "create", "ecomlg-001"], env=env, capture_output=True, text=True
    )

    assert migrated.returncode == 0, migrated.stderr
    assert "up to date" in migrated.stderr
    assert created.returncode == 0, created.stderr
    assert (tmp_path / "state" / "pgdata" / "PG_VERSION").exists()


def test_the_models_match_the_migrations(database_url: str) -> None:
    command.check(alembic_config(database_url))


def test_migrations_go_down_and_up_again(fresh_database_url: str) -> None:
    config = alembic_config(fresh_database_url)

    command.downgrade(config, "base")
    with psycopg.connect(libpq_url(fresh_database_url)) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename <> 'alembic_version'"
        ).fetchone()
    command.upgrade(config, "head")

    assert tables == (0,)
    command.check(config)


def test_a_wrong_database_url_is_a_clear_error() -> None:
    from keybuzz.db import async_url

    with pytest.raises(ValueError, match="must be a PostgreSQL URL"):
        async_url("mysql://root@localhost/test")


def test_alembic_refuses_an_unknown_revision(database_url: str) -> None:
    with pytest.raises(CommandError):
        command.upgrade(alembic_config(database_url), "no-such-revision")


def test_ids_made_in_bulk_are_distinct_time_ordered_uuid7s() -> None:
    before = uuid7()
    made = [uuid.UUID(value) for value in uuid7_hexes(1000)]

    assert len(set(made)) == 1000
    assert all(value.version == 7 and value.variant == uuid.RFC_4122 for value in made)
    # The first 48 bits are the milliseconds, as uuid7's: none is older than one made before.
    assert min(value.int >> 80 for value in made) >= before.int >> 80
