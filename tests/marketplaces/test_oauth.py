"""Website authorization against the simulator: the happy path and every attack on `state`."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from keybuzz.amazon.retry import RetryPolicy
from keybuzz.config import Settings
from keybuzz.db import transaction
from keybuzz.marketplaces.oauth import BINDING_COOKIE, purge_expired_states
from keybuzz.runtime import Runtime, open_runtime
from keybuzz.secrets import SecretName, Stored, open_secret_backend, read_amazon_spapi
from keybuzz.simulator.faults import FaultKind, ScriptedFault
from keybuzz.simulator.server import SimulatorServer
from keybuzz.tenants.models import TenantId
from tests.factories import TenantCredentials
from tests.fixtures.amazon import (
    SELLER,
    START,
    Deployed,
    OnVault,
    amazon_settings,
    callback_target,
    connect,
    connection_of,
    consent,
    token_calls,
)
from tests.fixtures.apps import api_client
from tests.fixtures.vault import VaultServer

PAGE = "text/html; charset=utf-8"

pytestmark = pytest.mark.amazon


async def test_a_seller_connects_amazon_end_to_end(
    client: httpx.AsyncClient,
    session: AsyncSession,
    tenant: TenantCredentials,
    amazon: SimulatorServer,
) -> None:
    auth_url, callback = await consent(client, tenant, region="EU", returnPath="/orders?tab=all")
    pending = await connection_of(client, tenant)
    landed = await client.get(callback)

    query = parse_qs(urlsplit(auth_url).query)
    assert query["application_id"] == ["amzn1.sp.solution.5f0c7d2e-3a41-4b8e-9c6d-7e2b1a0f4c93"]
    assert query["redirect_uri"] == [
        "http://127.0.0.1:8000/api/v1/marketplaces/amazon/oauth/callback"
    ]
    assert len(base64.urlsafe_b64decode(query["state"][0] + "==")) * 8 >= 128
    assert pending["status"] == "PENDING"
    assert landed.status_code == 303
    assert landed.headers["location"] == "/orders?tab=all"
    assert landed.headers["referrer-policy"] == "no-referrer"
    connection = await connection_of(client, tenant)
    assert connection["status"] == "CONNECTED"
    assert connection["sellingPartnerId"] == SELLER
    assert connection["marketplaces"] == [
        {"id": "A13V1IB3VIYZZH", "countryCode": "FR", "name": "Amazon.fr"}
    ]
    assert connection["action"] is None
    assert token_calls(amazon) == 2  # the code exchange, then the verification's access token


async def test_the_token_lives_only_in_the_secret_store(
    client: httpx.AsyncClient, session: AsyncSession, tenant: TenantCredentials, settings: Settings
) -> None:
    assert (await connect(client, tenant)).status_code == 303

    backend = open_secret_backend(settings)
    stored = await read_amazon_spapi(backend.store(session), tenant.id)
    dump = await session.execute(
        text(
            "SELECT string_agg(t::text, ' ') FROM ("
            " SELECT row_to_json(c)::text AS t FROM marketplace_connections c"
            "  WHERE c.tenant_id = :tenant"
            " UNION ALL SELECT row_to_json(s)::text FROM oauth_states s WHERE s.tenant_id = :tenant"
            " UNION ALL SELECT encode(ciphertext, 'escape') FROM tenant_secrets"
            "  WHERE tenant_id = :tenant) rows"
        ),
        {"tenant": tenant.id},
    )
    rows = dump.scalar() or ""
    await backend.aclose()
    assert isinstance(stored, Stored)
    token = stored.value.refresh_token.get_secret_value()
    assert token.startswith("Atzr|")
    assert "Atzr|" not in rows
    assert SELLER in rows


async def test_the_round_trip_stores_the_token_in_openbao(
    on_vault: OnVault, vault_server: VaultServer
) -> None:
    landed = await connect(on_vault.client, on_vault.tenant)
    connection = await connection_of(on_vault.client, on_vault.tenant)

    secret = vault_server.admin().secrets.kv.v2.read_secret_version(
        path=on_vault.secret_path,
        mount_point="secret",
        raise_on_deleted_version=True,
    )
    assert landed.status_code == 303
    assert connection["status"] == "CONNECTED"
    assert connection["marketplaces"] == [
        {"id": "A13V1IB3VIYZZH", "countryCode": "FR", "name": "Amazon.fr"}
    ]
    assert secret["data"]["data"]["refresh_token"].startswith("Atzr|")
    assert secret["data"]["data"]["selling_partner_id"] == SELLER


_REDIRECT_PREFIXES = (
    "//",
    "///",
    "////",
    "/\\",
    "\\\\",
    "\t//",
    " //",
    "https://",
    "http:",
    "javascript:alert(1)//",
    "%2F%2F",
    "/%2F",
    "/%252F%252F",
    "/%5C",
    "%5C%5C",
    "/%09/",
    "/\r\n//",
)
_REDIRECT_HOSTS = ("evil.example", "evil.example/orders", "evil.example?next=/orders")
OPEN_REDIRECTS = [prefix + host for prefix in _REDIRECT_PREFIXES for host in _REDIRECT_HOSTS] + [
    "/\tevil",
    "/\r\nLocation: https://evil.example",
    "/%0d%0aLocation:%20https://evil.example",
    "data:text/html,hi",
    "evil.example",
    "/x:y",
    "//",
]


@pytest.mark.parametrize("return_path", OPEN_REDIRECTS)
async def test_open_redirect_return_paths_are_refused(
    client: httpx.AsyncClient, tenant: TenantCredentials, return_path: str
) -> None:
    response = await client.post(
        START, json={"region": "EU", "returnPath": return_path}, headers=tenant.headers
    )

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "returnPath"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "region"),
        ({"region": "MARS"}, "region"),
        ({"marketplaceId": "NOPE"}, "marketplaceId"),
        ({"marketplaceId": "ATVPDKIKX0DER", "region": "EU"}, "region"),
    ],
)
async def test_a_start_without_a_usable_region_names_the_field(
    client: httpx.AsyncClient, tenant: TenantCredentials, body: dict[str, str], field: str
) -> None:
    response = await client.post(START, json=body, headers=tenant.headers)

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == field


async def test_a_marketplace_picks_its_region(
    client: httpx.AsyncClient, tenant: TenantCredentials
) -> None:
    response = await client.post(
        START, json={"marketplaceId": "ATVPDKIKX0DER"}, headers=tenant.headers
    )

    assert response.status_code == 200
    connection = await connection_of(client, tenant)
    assert connection["region"] == "NA"


async def _assert_refused(
    response: httpx.Response, amazon: SimulatorServer, calls_before: int, words: str
) -> None:
    assert response.status_code == 400
    assert response.headers["content-type"] == PAGE
    assert response.headers["referrer-policy"] == "no-referrer"
    assert words in response.text
    assert token_calls(amazon) == calls_before


async def test_a_callback_without_state_is_refused(
    client: httpx.AsyncClient, tenant: TenantCredentials, amazon: SimulatorServer
) -> None:
    _, callback = await consent(client, tenant)
    query = parse_qs(urlsplit(callback).query)

    response = await client.get(
        "/api/v1/marketplaces/amazon/oauth/callback",
        params={"selling_partner_id": SELLER, "spapi_oauth_code": query["spapi_oauth_code"][0]},
    )

    await _assert_refused(response, amazon, 0, "no state")


async def test_a_forged_state_is_refused(
    client: httpx.AsyncClient, tenant: TenantCredentials, amazon: SimulatorServer
) -> None:
    _, callback = await consent(client, tenant)
    query = parse_qs(urlsplit(callback).query)

    response = await client.get(
        "/api/v1/marketplaces/amazon/oauth/callback",
        params={
            "state": "forged-" + query["state"][0][7:],
            "selling_partner_id": SELLER,
            "spapi_oauth_code": query["spapi_oauth_code"][0],
        },
    )

    await _assert_refused(response, amazon, 0, "not issued by KeyBuzz")


async def test_another_tenants_state_is_refused(
    client: httpx.AsyncClient,
    tenant: TenantCredentials,
    other_tenant: TenantCredentials,
    amazon: SimulatorServer,
) -> None:
    _, victims_callback = await consent(client, tenant)
    await consent(client, other_tenant)  # the browser now holds the other tenant's binding

    response = await client.get(victims_callback)

    await _assert_refused(response, amazon, 0, "another browser or by another account")
    connection = await connection_of(client, tenant)
    assert connection["status"] == "PENDING"


async def test_an_expired_state_is_refused(
    client: httpx.AsyncClient,
    session: AsyncSession,
    tenant: TenantCredentials,
    amazon: SimulatorServer,
) -> None:
    _, callback = await consent(client, tenant)
    await session.execute(
        text(
            "UPDATE oauth_states SET expires_at = now() - interval '1 second' "
            "WHERE tenant_id = :tenant"
        ),
        {"tenant": tenant.id},
    )

    response = await client.get(callback)

    await _assert_refused(response, amazon, 0, "expired")


async def test_states_are_deleted_an_hour_after_they_expire(
    client: httpx.AsyncClient, session: AsyncSession, tenant: TenantCredentials
) -> None:
    for _ in range(3):
        await consent(client, tenant)
    await session.execute(
        text(
            "UPDATE oauth_states SET expires_at = now() - (interval '50 minutes' * n) "
            "FROM (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM oauth_states "
            "      WHERE tenant_id = :tenant) AS aged "
            "WHERE oauth_states.id = aged.id AND oauth_states.tenant_id = :tenant AND n > 0"
        ),
        {"tenant": tenant.id},
    )  # ages: live, expired 50 minutes ago, expired 100 minutes ago

    deleted = await purge_expired_states(session)

    left = await session.scalars(
        text("SELECT expires_at > now() FROM oauth_states WHERE tenant_id = :tenant ORDER BY id"),
        {"tenant": tenant.id},
    )
    assert deleted == 1
    assert list(left) == [True, False]


async def test_a_replayed_callback_is_refused(
    client: httpx.AsyncClient, tenant: TenantCredentials, amazon: SimulatorServer
) -> None:
    _, callback = await consent(client, tenant)
    binding = client.cookies.get(BINDING_COOKIE)
    assert (await client.get(callback)).status_code == 303
    calls = token_calls(amazon)
    assert binding is not None

    response = await client.get(callback, headers={"Cookie": f"{BINDING_COOKIE}={binding}"})

    await _assert_refused(response, amazon, calls, "already used")


async def test_the_sellers_refusal_is_shown_as_such(
    client: httpx.AsyncClient, tenant: TenantCredentials, amazon: SimulatorServer
) -> None:
    started = await client.post(START, json={"region": "EU"}, headers=tenant.headers)
    async with httpx.AsyncClient() as browser:
        answer = await browser.get(started.json()["authUrl"] + "&sim_refuse=1")

    response = await client.get(callback_target(answer.headers["location"]))

    await _assert_refused(response, amazon, 0, "access_denied")
    assert "did not authorize" in response.text
    connection = await connection_of(client, tenant)
    assert connection["status"] == "PENDING"


async def test_an_amazon_account_of_another_tenant_is_refused(
    client: httpx.AsyncClient,
    tenant: TenantCredentials,
    other_tenant: TenantCredentials,
    amazon: SimulatorServer,
) -> None:
    assert (await connect(client, tenant)).status_code == 303
    calls = token_calls(amazon)

    response = await connect(client, other_tenant)

    assert response.status_code == 409
    assert "already connected to another KeyBuzz account" in response.text
    assert token_calls(amazon) == calls


async def test_of_eight_concurrent_callbacks_exactly_one_wins(
    deployed: Deployed, amazon: SimulatorServer
) -> None:
    client, tenant = deployed.client, await deployed.tenant(connected=False)
    _, callback = await consent(client, tenant)

    responses = await asyncio.gather(*(client.get(callback) for _ in range(8)))

    connection = await connection_of(client, tenant)
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [303] + [400] * 7
    assert token_calls(amazon) == 2
    assert connection["status"] == "CONNECTED"


async def test_of_eight_tenants_consenting_for_one_seller_at_once_exactly_one_connects(
    deployed: Deployed, amazon: SimulatorServer
) -> None:
    tenants = [await deployed.tenant(f"rival-{n:03d}", connected=False) for n in range(8)]
    callbacks = []
    for tenant in tenants:  # each in a browser of its own: the state is bound to its cookie
        _, callback = await consent(deployed.client, tenant)
        callbacks.append((callback, deployed.client.cookies[BINDING_COOKIE]))
        deployed.client.cookies.clear()
    calls = token_calls(amazon)

    async def complete(callback: str, binding: str) -> httpx.Response:
        async with api_client(deployed.runtime) as browser:
            browser.cookies.set(BINDING_COOKIE, binding)
            return await browser.get(callback)

    responses = await asyncio.gather(*(complete(*callback) for callback in callbacks))

    statuses = [response.status_code for response in responses]
    assert sorted(statuses) == [303] + [409] * 7
    winner = tenants[statuses.index(303)]
    connections = [await connection_of(deployed.client, tenant) for tenant in tenants]
    assert [c["status"] for c in connections].count("CONNECTED") == 1
    assert (await connection_of(deployed.client, winner))["status"] == "CONNECTED"
    assert token_calls(amazon) == calls + 2  # the winner's code exchange, its first access token
    async with transaction(deployed.runtime.privileged_sessionmaker) as session:
        store = deployed.runtime.secrets.store(session)
        stored = [await store.exists(TenantId(t.id), SecretName.AMAZON_SPAPI) for t in tenants]
    assert stored.count(True) == 1


async def test_a_callback_that_fails_after_the_code_exchange_keeps_nothing_but_the_used_state(
    runtime: Runtime,
    session: AsyncSession,
    tenant: TenantCredentials,
    amazon: SimulatorServer,
) -> None:
    quick = dataclasses.replace(runtime.amazon, retry=RetryPolicy(attempts=2, base_delay=0.001))
    async with api_client(dataclasses.replace(runtime, amazon=quick), session) as client:
        _, callback = await consent(client, tenant)
        amazon.simulator.script_faults(
            [ScriptedFault(FaultKind.INTERNAL_ERROR, "sellers.getMarketplaceParticipations")] * 2
        )

        failed = await client.get(callback)
        connection = await connection_of(client, tenant)
    secrets_stored = await session.scalar(
        text("SELECT count(*) FROM tenant_secrets WHERE tenant_id = :t"), {"t": tenant.id}
    )
    state_used = await session.scalar(
        text("SELECT bool_and(used_at IS NOT NULL) FROM oauth_states WHERE tenant_id = :t"),
        {"t": tenant.id},
    )

    assert failed.status_code == 502
    assert "could not be reached" in failed.text
    assert state_used
    assert (connection["status"], connection["sellingPartnerId"]) == ("PENDING", None)
    assert secrets_stored == 0


async def test_a_callback_refused_for_the_apps_credentials_says_so_on_the_connection(
    runtime: Runtime,
    session: AsyncSession,
    tenant: TenantCredentials,
    amazon: SimulatorServer,
    tmp_path: Path,
) -> None:
    wrong = amazon_settings(tmp_path, amazon, lwa_client_secret="not-the-secret")
    async with open_runtime(wrong, engine=runtime.engine) as misconfigured:
        async with api_client(misconfigured, session) as client:
            _, callback = await consent(client, tenant)
            failed = await client.get(callback)
            connection = await connection_of(client, tenant)

    assert failed.status_code == 503
    assert "KEYBUZZ_LWA_CLIENT_SECRET" in failed.text
    assert connection["status"] == "ERROR"
    assert connection["action"]["kind"] == "contact_support"
