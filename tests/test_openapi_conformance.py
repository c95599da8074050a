"""The API keeps the promises of its OpenAPI description, checked by schemathesis.

Every operation of the schema is called with valid and invalid data (at least 100 examples of
each operation), authenticated with a real tenant's API key, on a real database holding a few of
its orders, and every answer goes through all of schemathesis' checks: no server error, only
documented status codes, content types, headers and bodies, valid data accepted, invalid data
refused, authentication enforced, 405 with `Allow` for undeclared methods.

The run is derandomized: the same examples every time, so it never flips. The examples are made
from the schema the app serves (built here without a database); the calls go to an app on the
module's database, whose lifespan runs on schemathesis' own event loop thread.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import hypothesis
import pytest
import schemathesis
from fastapi import FastAPI
from schemathesis import Case
from schemathesis.config import SchemathesisConfig
from schemathesis.python import asgi
from starlette.types import Receive, Scope, Send

from keybuzz.app import create_app
from keybuzz.config import Settings
from keybuzz.db import create_engine, create_sessionmaker, transaction
from keybuzz.orders.service import upsert_orders
from keybuzz.tenants.models import ApiKey, TenantId
from keybuzz.tenants.service import hash_api_key, new_api_key
from tests.factories import TenantCredentials, make_tenant, order_record
from tests.fixtures.limits import GENEROUS_LIMITS

EXAMPLES_PER_OPERATION = 100
TENANT = TenantId("ecomlg-001")
API_KEY = new_api_key()
"""Known before the tenant exists: schemathesis builds some of its examples, with their
credentials, when it collects the test."""


def _settings(data_dir: Path) -> Settings:
    # Hundreds of requests of one key in seconds: the limits must not throttle what is tested.
    return Settings(_env_file=None, data_dir=data_dir, **GENEROUS_LIMITS)  # type: ignore[call-arg, arg-type]


class _AppUnderTest:
    """The app the module's fixture opens on its database, called by the schema built here;
    schemathesis runs its lifespan (engine, pool) on its own event loop thread."""

    target: FastAPI | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.target is not None, "the app_under_test fixture opens the app"
        await self.target(scope, receive, send)


APP = _AppUnderTest()
schema = schemathesis.openapi.from_dict(
    create_app(_settings(Path(".keybuzz"))).openapi(),
    config=SchemathesisConfig.from_dict(
        {
            "seed": 10,
            "suppress-health-check": ["too_slow", "filter_too_much", "data_too_large"],
            "generation": {
                "mode": "all",
                "max-examples": EXAMPLES_PER_OPERATION,
                "deterministic": True,
            },
            "checks": {"enabled": True},
            "auth": {
                "openapi": {
                    "ApiKey": {"bearer": API_KEY},
                    "TenantId": {"api_key": TENANT},
                }
            },
        }
    ),
)
schema.app = APP


@pytest.fixture(scope="module")
async def seeded_tenant(module_database_url: str) -> TenantCredentials:
    """A tenant with a few orders, committed, as the app reads them in production."""
    engine = create_engine(module_database_url, pool_size=1)
    try:
        async with transaction(create_sessionmaker(engine)) as session:
            tenant = await make_tenant(session, TENANT)
            session.add(ApiKey(tenant_id=TENANT, key_hash=hash_api_key(API_KEY), prefix="kb_"))
            await upsert_orders(session, tenant.id, [order_record() for _ in range(5)])
    finally:
        await engine.dispose()
    return TenantCredentials(TENANT, API_KEY)


@pytest.fixture(scope="module")
def app_under_test(
    module_database_url: str,
    seeded_tenant: TenantCredentials,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[FastAPI]:
    settings = _settings(tmp_path_factory.mktemp("kb") / ".keybuzz")
    APP.target = create_app(settings, database_url=module_database_url)
    yield APP.target
    asgi.shutdown_lifespans()
    APP.target = None


def _within_rules_no_schema_states(case: Case) -> None:
    """A valid example kept within the few rules JSON Schema cannot state (each said in its
    description): a cursor is a token only the API issues, `from` comes before `to`, and a
    return path is a path of this site in every decoding of it (no open redirect). Invalid
    examples keep them: the API must refuse those."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return
    if isinstance(case.query, dict):
        case.query.pop("cursor", None)
        start, end = case.query.get("from"), case.query.get("to")
        if isinstance(start, str) and isinstance(end, str) and _instant(start) > _instant(end):
            case.query["from"], case.query["to"] = end, start
    if isinstance(case.body, dict):
        case.body.pop("returnPath", None)


def _instant(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


@schema.parametrize()
@hypothesis.settings(deadline=None, derandomize=True, max_examples=EXAMPLES_PER_OPERATION)
@pytest.mark.usefixtures("app_under_test")
def test_every_operation_keeps_its_schema(case: Case) -> None:
    _within_rules_no_schema_states(case)
    case.call_and_validate()
