"""Amazon connections whose status never lies.

A connection is CONNECTED only while its secret exists and its last use or check succeeded.
Every path that finds the secret missing or rejected flips it to NEEDS_RECONNECT with the
reason, in the same transaction that records the failure (errors marked ``keeps_changes``).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession

from keybuzz.amazon.client import SpApiClient
from keybuzz.amazon.errors import (
    AmazonAccessDenied,
    AmazonAppCredentialsInvalid,
    AmazonAuthorizationRevoked,
    AmazonUnavailable,
)
from keybuzz.amazon.regions import MARKETPLACES, Region
from keybuzz.amazon.registry import REGISTRY
from keybuzz.errors import Conflict, NotFound, ServiceUnavailable
from keybuzz.marketplaces import repository
from keybuzz.marketplaces.models import ConnectionStatus, MarketplaceConnection
from keybuzz.marketplaces.schemas import (
    ConnectionAction,
    ConnectionList,
    ConnectionRead,
    MarketplaceRead,
)
from keybuzz.runtime import Runtime
from keybuzz.secrets import (
    AmazonSpapiSecret,
    MissingSecret,
    SecretAccessDenied,
    SecretKeyUnknown,
    SecretName,
    SecretStore,
    SecretStoreMisconfigured,
    SecretStoreUnavailable,
    SecretUnreadable,
    read_amazon_spapi,
)
from keybuzz.tenants.models import TenantId

logger = logging.getLogger(__name__)

AMAZON = "amazon"
START_OAUTH_PATH = "/api/v1/marketplaces/amazon/oauth/start"

REASON_SECRET_MISSING = (
    "The stored Amazon authorization is gone; the seller must connect the Amazon account again."
)
REASON_REVOKED = (
    "Amazon refused the stored authorization (revoked by the seller, or expired); the seller "
    "must connect the Amazon account again."
)
REASON_ACCESS_DENIED = (
    "Amazon denied this app access to the seller account; the seller must authorize it again."
)
REASON_APP_CREDENTIALS = (
    "Amazon refused KeyBuzz's application credentials (wrong or not rotated); an operator must "
    "update KEYBUZZ_LWA_CLIENT_ID / KEYBUZZ_LWA_CLIENT_SECRET."
)
REASON_UNREACHABLE = "Amazon could not be reached; the next check or sync will try again."
REASON_SECRET_UNUSABLE = (
    "The stored authorization cannot be read with the current secrets key; an operator must "
    "restore the key (see `keybuzz secrets status`)."
)


class AmazonNotConnected(Conflict):
    code = "amazon_not_connected"
    title = "Amazon is not connected"


class AmazonReconnectRequired(Conflict):
    code = "amazon_reconnect_required"
    title = "The Amazon account must be connected again"
    keeps_changes = True


class AmazonConnectionFailing(ServiceUnavailable):
    """Amazon cannot be used right now for a reason the seller cannot fix (app, network)."""

    code = "amazon_unavailable"
    title = "Amazon cannot be reached with this connection right now"
    keeps_changes = True


class ConnectionNotFound(NotFound):
    code = "connection_not_found"
    title = "No such connection"


@dataclass(frozen=True)
class UsableConnection:
    connection: MarketplaceConnection
    refresh_token: SecretStr
    region: Region


def start_action(kind: str = "connect") -> ConnectionAction:
    verb = "Connect" if kind == "connect" else "Reconnect"
    return ConnectionAction(
        kind=kind,
        message=f"{verb} the Amazon account: POST {START_OAUTH_PATH} with the region, then send "
        "the seller's browser to the returned authUrl.",
        method="POST",
        href=START_OAUTH_PATH,
    )


def _action(connection: MarketplaceConnection) -> ConnectionAction | None:
    match connection.status:
        case ConnectionStatus.CONNECTED:
            return None
        case ConnectionStatus.NEEDS_RECONNECT:
            return start_action("reconnect")
        case ConnectionStatus.ERROR if connection.status_reason == REASON_UNREACHABLE:
            return ConnectionAction(kind="retry", message="Nothing to do: KeyBuzz retries.")
        case ConnectionStatus.ERROR:
            return ConnectionAction(
                kind="contact_support", message=connection.status_reason or "Contact support."
            )
        case _:
            return start_action("connect")


def _marketplace(marketplace_id: str) -> MarketplaceRead:
    known = MARKETPLACES.get(marketplace_id)
    if known is None:
        return MarketplaceRead(id=marketplace_id, country_code=None, name=None)
    return MarketplaceRead(id=marketplace_id, country_code=known.country_code, name=known.name)


def to_read(connection: MarketplaceConnection) -> ConnectionRead:
    action = _action(connection)
    return ConnectionRead(
        marketplace=connection.marketplace,
        status=connection.status,
        status_reason=connection.status_reason,
        region=connection.region,
        selling_partner_id=connection.selling_partner_id,
        marketplaces=[
            _marketplace(marketplace_id) for marketplace_id in connection.marketplace_ids
        ],
        connected_at=connection.connected_at,
        last_checked_at=connection.last_checked_at,
        last_sync_at=connection.last_sync_at,
        action=action,
        reconnect_url=action.href if action and action.kind in ("connect", "reconnect") else None,
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def mark(
    session: AsyncSession,
    connection: MarketplaceConnection,
    status: ConnectionStatus,
    reason: str | None,
) -> MarketplaceConnection:
    if connection.status is not status or connection.status_reason != reason:
        logger.info(
            "connection %s/%s: %s -> %s",
            connection.tenant_id,
            connection.marketplace,
            connection.status.value,
            status.value,
        )
    return await repository.update_connection(
        session, connection, status=status, status_reason=reason, last_checked_at=_now()
    )


async def list_connections(
    session: AsyncSession, store: SecretStore, tenant_id: TenantId
) -> ConnectionList:
    """The tenant's connections; a CONNECTED one whose secret vanished is corrected first."""
    connections = await repository.list_connections(session, tenant_id)
    for connection in connections:
        if connection.status is ConnectionStatus.CONNECTED:
            try:
                present = await store.exists(tenant_id, SecretName.AMAZON_SPAPI)
            except SecretStoreUnavailable:
                continue
            if not present:
                await mark(
                    session, connection, ConnectionStatus.NEEDS_RECONNECT, REASON_SECRET_MISSING
                )
    return ConnectionList(items=[to_read(connection) for connection in connections])


async def disconnect(
    session: AsyncSession, store: SecretStore, tenant_id: TenantId
) -> ConnectionRead:
    """Forget the authorization (the secret), keep the orders, say DISCONNECTED."""
    connection = await repository.get_connection(session, tenant_id, AMAZON)
    if connection is None:
        raise ConnectionNotFound("This tenant has no Amazon connection.")
    await store.delete(tenant_id, SecretName.AMAZON_SPAPI)
    REGISTRY.forget(connection_key(connection))
    connection = await mark(
        session, connection, ConnectionStatus.DISCONNECTED, "Disconnected by the tenant."
    )
    return to_read(connection)


async def _read_secret(
    session: AsyncSession, store: SecretStore, connection: MarketplaceConnection
) -> AmazonSpapiSecret:
    """The stored authorization; a missing or unusable one flips the status before raising."""
    tenant_id = TenantId(connection.tenant_id)
    try:
        found = await read_amazon_spapi(store, tenant_id)
    except (SecretKeyUnknown, SecretAccessDenied, SecretStoreMisconfigured) as error:
        await mark(session, connection, ConnectionStatus.ERROR, REASON_SECRET_UNUSABLE)
        raise AmazonConnectionFailing(REASON_SECRET_UNUSABLE) from error
    except SecretUnreadable as error:
        await mark(session, connection, ConnectionStatus.NEEDS_RECONNECT, REASON_SECRET_MISSING)
        raise _reconnect_required(REASON_SECRET_MISSING) from error
    if isinstance(found, MissingSecret):
        await mark(session, connection, ConnectionStatus.NEEDS_RECONNECT, REASON_SECRET_MISSING)
        raise _reconnect_required(REASON_SECRET_MISSING)
    return found.value


def _reconnect_required(reason: str) -> AmazonReconnectRequired:
    return AmazonReconnectRequired(
        reason, action=start_action("reconnect").model_dump(by_alias=True, exclude_none=True)
    )


def not_connected() -> AmazonNotConnected:
    return AmazonNotConnected(
        "This tenant has no connected Amazon account. Connect it first: POST "
        f"{START_OAUTH_PATH}, then open the returned authUrl in the seller's browser.",
        action=start_action("connect").model_dump(by_alias=True, exclude_none=True),
    )


async def verify_with_amazon(
    session: AsyncSession,
    runtime: Runtime,
    connection: MarketplaceConnection,
    secret: AmazonSpapiSecret,
    *,
    list_marketplaces: bool,
) -> MarketplaceConnection:
    """Use the authorization once; record the outcome as the connection's status."""
    client = amazon_client(runtime, connection, secret.refresh_token)
    try:
        if list_marketplaces:
            participations = await client.sellers.get_marketplace_participations()
            marketplace_ids = [
                p.marketplace.id for p in participations if p.participation.is_participating
            ]
        else:
            await client.check_credentials()
    except (AmazonAuthorizationRevoked, AmazonAccessDenied) as error:
        reason = (
            REASON_REVOKED
            if isinstance(error, AmazonAuthorizationRevoked)
            else REASON_ACCESS_DENIED
        )
        await mark(session, connection, ConnectionStatus.NEEDS_RECONNECT, reason)
        raise _reconnect_required(reason) from error
    except AmazonAppCredentialsInvalid as error:
        await mark(session, connection, ConnectionStatus.ERROR, REASON_APP_CREDENTIALS)
        raise AmazonConnectionFailing(REASON_APP_CREDENTIALS) from error
    except AmazonUnavailable as error:
        await mark(session, connection, ConnectionStatus.ERROR, REASON_UNREACHABLE)
        raise AmazonConnectionFailing(REASON_UNREACHABLE, headers={"Retry-After": "60"}) from error
    values: dict[str, object] = {}
    if list_marketplaces:
        values["marketplace_ids"] = marketplace_ids
    connection = await repository.update_connection(
        session,
        connection,
        status=ConnectionStatus.CONNECTED,
        status_reason=None,
        last_checked_at=_now(),
        **values,
    )
    return connection


def amazon_client(
    runtime: Runtime, connection: MarketplaceConnection, refresh_token: SecretStr
) -> SpApiClient:
    return SpApiClient(
        runtime.http,
        runtime.settings,
        region=Region(connection.region or Region.EU),
        refresh_token=refresh_token,
        connection_key=connection_key(connection),
    )


def connection_key(connection: MarketplaceConnection) -> str:
    """Names the connection's rate-limit buckets and cached tokens in the client registry."""
    return f"{connection.tenant_id}/{connection.marketplace}"


async def require_connected(
    session: AsyncSession, runtime: Runtime, store: SecretStore, tenant_id: TenantId
) -> UsableConnection:
    """The tenant's Amazon connection, proven usable now, or a 409 that says what to do."""
    connection = await repository.get_connection(session, tenant_id, AMAZON)
    if connection is None or connection.status in (
        ConnectionStatus.PENDING,
        ConnectionStatus.DISCONNECTED,
    ):
        raise not_connected()
    if connection.status is ConnectionStatus.NEEDS_RECONNECT:
        raise _reconnect_required(connection.status_reason or REASON_SECRET_MISSING)
    secret = await _read_secret(session, store, connection)
    connection = await verify_with_amazon(
        session, runtime, connection, secret, list_marketplaces=False
    )
    return UsableConnection(connection, secret.refresh_token, Region(connection.region or "EU"))


async def check_connection(
    session: AsyncSession, runtime: Runtime, store: SecretStore, tenant_id: TenantId
) -> ConnectionRead:
    """Verify a connection end to end (secret, token, marketplaces) and record what was found."""
    connection = await repository.get_connection(session, tenant_id, AMAZON)
    if connection is None:
        raise ConnectionNotFound(f"Tenant {tenant_id} has no Amazon connection.")
    if connection.status in (ConnectionStatus.DISCONNECTED, ConnectionStatus.PENDING):
        exists = await store.exists(tenant_id, SecretName.AMAZON_SPAPI)
        if not exists:
            return to_read(connection)
    try:
        secret = await _read_secret(session, store, connection)
        connection = await verify_with_amazon(
            session, runtime, connection, secret, list_marketplaces=True
        )
    except (AmazonReconnectRequired, AmazonConnectionFailing):
        await session.refresh(connection)
    return to_read(connection)
