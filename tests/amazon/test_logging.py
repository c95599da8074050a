"""A full run with every logger at DEBUG (httpx and httpcore included): no token, code, buyer
name, e-mail or address may appear in a log line or an exception message."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pydantic import SecretStr

from keybuzz.amazon.client import SpApiClient
from keybuzz.amazon.errors import AmazonError
from keybuzz.amazon.lwa import LwaClient
from keybuzz.amazon.regions import Region, consent_url
from keybuzz.amazon.registry import ConnectionRegistry
from keybuzz.amazon.reports import OrderReportQuery
from keybuzz.simulator import FaultSettings, SimulatorServer
from keybuzz.simulator.settings import DEFAULT_REDIRECT_URIS
from tests.amazon.conftest import FR, QUICK_RETRY, all_orders, amazon_config

REDIRECT = DEFAULT_REDIRECT_URIS[0]
PII_FIELDS = ("buyerName", "buyerEmail", "name", "addressLine1", "addressLine2", "phone")


def personal_data(server: SimulatorServer, seller: str) -> set[str]:
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in PII_FIELDS and isinstance(value, str) and len(value) > 3:
                    found.add(value)
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for order in server.simulator.ground_truth(seller)["orders"]:
        walk({k: v for k, v in order.items() if k in ("buyer", "recipient")})
    return found


def secrets_of(server: SimulatorServer) -> set[str]:
    credentials = server.simulator.credentials
    return {
        *credentials.refresh_tokens,
        *credentials.access_tokens,  # RDTs included
        *credentials.codes,
        server.settings.client_secret.get_secret_value(),
    }


async def seller_consents(server: SimulatorServer, http: httpx.AsyncClient) -> str:
    """The seller's browser at Seller Central: the code comes back in the redirect."""
    url = consent_url(amazon_config(server), Region.EU, state="st", redirect_uri=REDIRECT)
    consent = await http.get(url)
    return parse_qs(urlsplit(consent.headers["location"]).query)["spapi_oauth_code"][0]


async def full_run(
    server: SimulatorServer, http: httpx.AsyncClient, code: str
) -> list[BaseException]:
    config = amazon_config(server)
    errors: list[BaseException] = []
    redirect = REDIRECT
    seller = server.settings.seller_id
    lwa = LwaClient(http, config, retry=QUICK_RETRY)
    grant = await lwa.exchange_authorization_code(code=code, redirect_uri=redirect)
    client = SpApiClient(
        http,
        config,
        region=Region.EU,
        refresh_token=grant.refresh_token,
        connection_key="logged",
        registry=ConnectionRegistry(),
        retry=QUICK_RETRY,
    )
    await client.check_credentials()
    await client.sellers.get_marketplace_participations()
    for api in ("v2026", "v0"):
        async for page in client.list_order_records(all_orders(), api=api):  # type: ignore[arg-type]
            assert page.records
    record = await client.get_order_record(page.records[0].external_order_id)
    assert record.customer_name
    report = OrderReportQuery(
        marketplace_ids=[FR],
        data_start_time=datetime.now(UTC) - timedelta(days=20),
        data_end_time=datetime.now(UTC) - timedelta(minutes=3),
    )
    async for _ in client.order_report_records(report, first_poll=0.01):
        pass

    failures: list[Callable[[], Any]] = [
        lambda: lwa.exchange_authorization_code(code=code, redirect_uri=redirect),
        lambda: client.orders.get_order("403-0000000-0000000"),
    ]
    for failing in failures:
        try:
            await failing()
        except AmazonError as error:
            errors.append(error)
    server.simulator.revoke(seller)
    other = SpApiClient(
        http,
        config,
        region=Region.EU,
        refresh_token=SecretStr(grant.refresh_token.get_secret_value()),
        connection_key="revoked",
        registry=ConnectionRegistry(),
        retry=QUICK_RETRY,
    )
    try:
        await other.sellers.get_marketplace_participations()
    except AmazonError as error:
        errors.append(error)
    return errors


@pytest.fixture
def everything_logged(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "keybuzz"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


async def test_no_secret_or_personal_data_in_logs_or_errors(
    make_sim: Callable[..., SimulatorServer],
    http: httpx.AsyncClient,
    everything_logged: pytest.LogCaptureFixture,
) -> None:
    faults = FaultSettings(error_rate=0.1, drop_rate=0.05, malformed_json_rate=0.05, seed=9)
    server = make_sim(orders=60, days=20, faults=faults)

    code = await seller_consents(server, http)
    everything_logged.clear()

    errors = await full_run(server, http, code)

    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    lines = [formatter.format(record) for record in everything_logged.records]
    messages = ["".join(traceback.format_exception(error)) for error in errors]
    assert len(errors) == 3
    assert any(line.startswith("httpcore") for line in lines)
    assert any(line.startswith("httpx") for line in lines)
    assert any("retrying" in line for line in lines)
    forbidden = secrets_of(server) | personal_data(server, server.settings.seller_id)
    assert len(forbidden) > 100
    leaks = {word for word in forbidden for text in lines + messages if word in text}
    assert leaks == set()
