"""The typed Amazon secret over either backend, and secret hygiene across a full lifecycle."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from keybuzz.config import Settings
from keybuzz.secrets import (
    Absence,
    AmazonSpapiSecret,
    MissingSecret,
    SecretConflict,
    SecretData,
    SecretMalformed,
    SecretName,
    SecretStore,
    SecretStoreError,
    Stored,
    open_secret_backend,
    read_amazon_spapi,
    write_amazon_spapi,
)
from keybuzz.tenants.models import TenantId
from tests.secrets.factories import refresh_token

AMAZON = SecretName.AMAZON_SPAPI


def authorization(token: str) -> AmazonSpapiSecret:
    return AmazonSpapiSecret(
        refresh_token=SecretStr(token),
        selling_partner_id="A3FAKESELLER",
        region="eu",
        authorized_at=dt.datetime(2026, 11, 27, 21, 0, tzinfo=dt.UTC),
    )


def test_the_default_backend_is_the_local_store(settings: Settings) -> None:
    assert settings.secrets_backend == "local"
    assert open_secret_backend(settings).name == "local"


async def test_connect_reauthorize_and_disconnect_an_amazon_seller(
    any_store: SecretStore, new_tenant: TenantId
) -> None:
    connected, renewed = authorization(refresh_token()), authorization(refresh_token())

    before = await read_amazon_spapi(any_store, new_tenant)
    first = await write_amazon_spapi(any_store, new_tenant, connected, cas=before.version)
    read = await read_amazon_spapi(any_store, new_tenant)
    second = await write_amazon_spapi(any_store, new_tenant, renewed, cas=read.version)
    with pytest.raises(SecretConflict):
        await write_amazon_spapi(any_store, new_tenant, connected, cas=read.version)
    latest = await read_amazon_spapi(any_store, new_tenant)
    await any_store.delete(new_tenant, AMAZON)
    after = await read_amazon_spapi(any_store, new_tenant)

    assert before == MissingSecret(Absence.NEVER_WRITTEN, 0)
    assert (first, second) == (1, 2)
    assert read == Stored(connected, 1)
    assert latest == Stored(renewed, 2)
    assert isinstance(after, MissingSecret)
    assert after.version == 2
    assert after.reason in (Absence.DELETED, Absence.DESTROYED)


async def test_a_stored_secret_missing_fields_is_malformed_and_names_only_the_fields(
    any_store: SecretStore, new_tenant: TenantId
) -> None:
    token = refresh_token()
    await any_store.write(
        new_tenant, AMAZON, SecretData({"refresh_token": token * 100, "region": "eu"}), cas=0
    )

    with pytest.raises(SecretMalformed) as malformed:
        await read_amazon_spapi(any_store, new_tenant)

    error = malformed.value
    assert error.version == 1
    assert error.code == "secret_malformed"
    assert (
        "has missing or invalid fields: authorized_at, refresh_token, selling_partner_id."
        in str(error)
    )
    assert token not in str(error)
    assert error.__cause__ is None
    assert error.__suppress_context__


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Everything at DEBUG, set before the database connection opens so SQL is logged too."""
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")  # statements and parameters
    caplog.set_level(logging.DEBUG)  # last: it also sets the capturing handler's level
    return caplog


async def test_no_secret_value_reaches_logs_errors_reprs_or_the_database(
    debug_logs: pytest.LogCaptureFixture,
    any_store: SecretStore,
    new_tenant: TenantId,
    session: AsyncSession,
) -> None:
    caplog = debug_logs
    tokens = [refresh_token(), refresh_token()]
    connected, renewed = authorization(tokens[0]), authorization(tokens[1])
    seen: list[object] = [connected, connected.to_data(), connected.model_dump()]
    errors: list[SecretStoreError] = []

    await write_amazon_spapi(any_store, new_tenant, connected, cas=0)
    seen.append(await read_amazon_spapi(any_store, new_tenant))
    seen.append(await any_store.read(new_tenant, AMAZON))
    try:
        await write_amazon_spapi(any_store, new_tenant, renewed, cas=0)
    except SecretConflict as conflict:
        errors.append(conflict)
    await write_amazon_spapi(any_store, new_tenant, renewed, cas=1)
    await any_store.write(new_tenant, AMAZON, SecretData({"refresh_token": tokens[1]}), cas=2)
    try:
        await read_amazon_spapi(any_store, new_tenant)
    except SecretMalformed as malformed:
        errors.append(malformed)
    await any_store.delete(new_tenant, AMAZON)
    seen.append(await read_amazon_spapi(any_store, new_tenant))
    dump = await _database_as_text(session)

    shown = [caplog.text, connected.model_dump_json(), dump]
    shown += [record.getMessage() for record in caplog.records]
    shown += [f"{item!r} {item!s}" for item in seen + errors]
    shown += [error.to_problem().model_dump_json() for error in errors]
    assert len(errors) == 2
    assert "refresh_token" not in await _column_names(session)
    assert f"secret amazon_spapi of tenant {new_tenant}" in caplog.text  # logging was on
    for token in tokens:
        for form in (token, token.encode().hex(), token.split("|")[1]):
            assert not [text for text in shown if form in text]


async def _database_as_text(session: AsyncSession) -> str:
    """Every row of every table as JSON (bytea in hex): what a database dump would reveal."""
    tables = await session.scalars(
        text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
    )
    rows = []
    for table in tables.all():
        dump = f"SELECT coalesce(json_agg(t)::text, '') FROM \"{table}\" t"
        dumped = await session.scalar(text(f"{dump} /* cross-tenant: a dump has every row */"))
        rows.append(f"{table}: {dumped}")
    return "\n".join(rows)


async def _column_names(session: AsyncSession) -> set[str]:
    names = await session.scalars(
        text("SELECT column_name FROM information_schema.columns WHERE table_schema = 'public'")
    )
    return set(names.all())
