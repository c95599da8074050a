"""Amazon connections whose status never lies.

A connection is CONNECTED only while its secret exists and its last use or check succeeded.
Whatever finds the secret missing or unusable, or Amazon refusing the authorization, raises a
``ConnectionFailure`` that names the status the connection now has (``connection_failure`` is
the one place that reads Amazon's and the secret store's errors that way). ``record_failure``
writes it on the connection: in the unit of work that met it when that one goes on (a check, an
OAuth callback), or, through ``record_failure_apart``, in a transaction of its own while the
failing unit of work rolls back everything it did.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import ClassVar

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from keybuzz.amazon.client import SpApiApp, SpApiClient
from keybuzz.amazon.errors import (
    AmazonAccessDenied,
    AmazonAppCredentialsInvalid,
    AmazonAuthorizationRevoked,
    AmazonUnavailable,
)
from keybuzz.amazon.ratelimit import Priority
from keybuzz.amazon.regions import MARKETPLACES, Region
from keybuzz.amazon.registry import ConnectionRegistry
from keybuzz.db import tenant_transaction
from keybuzz.errors import Conflict, KeyBuzzError, NotFound, ServiceUnavailable
from keybuzz.marketplaces import repository
from keybuzz.marketplaces.models import ConnectionStatus, MarketplaceConnection
from keybuzz.marketplaces.schemas import (
    ConnectionAction,
    ConnectionList,
    ConnectionRead,
    MarketplaceRead,
)
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


class ConnectionFailure(KeyBuzzError):
    """The tenant's Amazon connection cannot be used now; ``connection_status`` is what the
    connection is from now on, the detail is its reason."""

    connection_status: ClassVar[ConnectionStatus]

    def __init__(
        self,
        tenant_id: TenantId,
        reason: str,
        *,
        action: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(reason, action=action, headers=headers)
        self.tenant_id = tenant_id
        self.reason = reason


class AmazonReconnectRequired(ConnectionFailure, Conflict):
    code = "amazon_reconnect_required"
    title = "The Amazon account must be connected again"
    connection_status = ConnectionStatus.NEEDS_RECONNECT

    def __init__(self, tenant_id: TenantId, reason: str) -> None:
        super().__init__(tenant_id, reason, action=_action_dump("reconnect"))


class AmazonConnectionFailing(ConnectionFailure, ServiceUnavailable):
    """Amazon cannot be used right now for a reason the seller cannot fix (app, key)."""

    code = "amazon_unavailable"
    title = "Amazon cannot be reached with this connection right now"
    connection_status = ConnectionStatus.ERROR


class AmazonUnreachable(AmazonConnectionFailing):
    """Amazon did not answer: nothing is wrong with the connection, a later try may work."""

    def __init__(self, tenant_id: TenantId) -> None:
        super().__init__(tenant_id, REASON_UNREACHABLE, headers={"Retry-After": "60"})


class AmazonNotConnected(Conflict):
    code = "amazon_not_connected"
    title = "Amazon is not connected"


class ConnectionNotFound(NotFound):
    code = "connection_not_found"
    title = "No such connection"


@dataclass(frozen=True)
class UsableConnection:
    connection: MarketplaceConnection
    refresh_token: SecretStr
    region: Region


def connection_failure(error: Exception, tenant_id: TenantId) -> ConnectionFailure | None:
    """What an error from Amazon or the secret store means for the tenant's connection, if
    anything: the one place that reads them that way."""
    match error:
        case ConnectionFailure():
            return error
        case AmazonAuthorizationRevoked():
            return AmazonReconnectRequired(tenant_id, REASON_REVOKED)
        case AmazonAccessDenied():
            return AmazonReconnectRequired(tenant_id, REASON_ACCESS_DENIED)
        case AmazonAppCredentialsInvalid():
            return AmazonConnectionFailing(tenant_id, REASON_APP_CREDENTIALS)
        case AmazonUnavailable():
            return AmazonUnreachable(tenant_id)
        case SecretKeyUnknown() | SecretAccessDenied() | SecretStoreMisconfigured():
            return AmazonConnectionFailing(tenant_id, REASON_SECRET_UNUSABLE)
        case SecretUnreadable():
            return AmazonReconnectRequired(tenant_id, REASON_SECRET_MISSING)
    return None


async def record_failure(
    session: AsyncSession, failure: ConnectionFailure
) -> MarketplaceConnection | None:
    """Write a failure on the tenant's Amazon connection (in ``session``'s unit of work)."""
    connection = await repository.get_connection(session, failure.tenant_id, AMAZON)
    if connection is None:
        return None
    return await mark(session, connection, failure.connection_status, failure.reason)


async def record_failure_apart(
    sessionmaker: async_sessionmaker[AsyncSession], failure: ConnectionFailure
) -> None:
    """``record_failure`` in a transaction of its own: the unit of work that met the failure
    rolls back, what the failure means for the connection stays. Call it once that unit of
    work has ended, so that no lock it held is waited for."""
    async with tenant_transaction(sessionmaker, failure.tenant_id) as session:
        await record_failure(session, failure)


def start_action(kind: str = "connect") -> ConnectionAction:
    verb = "Connect" if kind == "connect" else "Reconnect"
    return ConnectionAction(
        kind=kind,
        message=f"{verb} the Amazon account: POST {START_OAUTH_PATH} with the region, then send "
        "the seller's browser to the returned authUrl.",
        method="POST",
        href=START_OAUTH_PATH,
    )


def _action_dump(kind: str) -> dict[str, str]:
    return start_action(kind).model_dump(by_alias=True, exclude_none=True)


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
        synced_through=connection.synced_through,
        next_sync_at=connection.next_sync_at
        if connection.status is ConnectionStatus.CONNECTED and connection.synced_through
        else None,
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
    for index, connection in enumerate(connections):
        if connection.status is ConnectionStatus.CONNECTED:
            try:
                present = await store.exists(tenant_id, SecretName.AMAZON_SPAPI)
            except SecretStoreUnavailable:
                continue
            if not present:
                corrected = await record_failure(
                    session, AmazonReconnectRequired(tenant_id, REASON_SECRET_MISSING)
                )
                connections[index] = corrected or connection
    return ConnectionList(items=[to_read(connection) for connection in connections])


async def disconnect(
    session: AsyncSession, store: SecretStore, registry: ConnectionRegistry, tenant_id: TenantId
) -> ConnectionRead:
    """Forget the authorization (the secret), keep the orders, say DISCONNECTED."""
    connection = await repository.get_connection(session, tenant_id, AMAZON)
    if connection is None:
        raise ConnectionNotFound("This tenant has no Amazon connection.")
    await store.delete(tenant_id, SecretName.AMAZON_SPAPI)
    registry.forget(connection_key(connection))
    connection = await mark(
        session, connection, ConnectionStatus.DISCONNECTED, "Disconnected by the tenant."
    )
    return to_read(connection)


async def _read_secret(store: SecretStore, connection: MarketplaceConnection) -> AmazonSpapiSecret:
    """The stored authorization, or the ``ConnectionFailure`` its absence means."""
    tenant_id = TenantId(connection.tenant_id)
    try:
        found = await read_amazon_spapi(store, tenant_id)
    except (SecretUnreadable, SecretAccessDenied, SecretStoreMisconfigured) as error:
        raise _failure(error, tenant_id) from error
    if isinstance(found, MissingSecret):
        raise AmazonReconnectRequired(tenant_id, REASON_SECRET_MISSING)
    return found.value


def _failure(error: Exception, tenant_id: TenantId) -> ConnectionFailure:
    failure = connection_failure(error, tenant_id)
    assert failure is not None, f"{type(error).__name__} says nothing of the connection"
    return failure


def not_connected() -> AmazonNotConnected:
    return AmazonNotConnected(
        "This tenant has no connected Amazon account. Connect it first: POST "
        f"{START_OAUTH_PATH}, then open the returned authUrl in the seller's browser.",
        action=_action_dump("connect"),
    )


async def verify_with_amazon(
    session: AsyncSession,
    amazon: SpApiApp,
    connection: MarketplaceConnection,
    refresh_token: SecretStr,
    *,
    list_marketplaces: bool,
) -> MarketplaceConnection:
    """Use the authorization once: the connection is CONNECTED, or a ``ConnectionFailure``."""
    client = amazon_client(amazon, connection, refresh_token)
    values: dict[str, object] = {}
    try:
        if list_marketplaces:
            participations = await client.sellers.get_marketplace_participations()
            values["marketplace_ids"] = [
                p.marketplace.id for p in participations if p.participation.is_participating
            ]
        else:
            await client.check_credentials()
    except (
        AmazonAuthorizationRevoked,
        AmazonAccessDenied,
        AmazonAppCredentialsInvalid,
        AmazonUnavailable,
    ) as error:
        raise _failure(error, TenantId(connection.tenant_id)) from error
    return await repository.update_connection(
        session,
        connection,
        status=ConnectionStatus.CONNECTED,
        status_reason=None,
        last_checked_at=_now(),
        **values,
    )


def amazon_client(
    amazon: SpApiApp,
    connection: MarketplaceConnection,
    refresh_token: SecretStr,
    priority: Priority = Priority.SYNC,
) -> SpApiClient:
    return amazon.client(
        region=Region(connection.region or Region.EU),
        refresh_token=refresh_token,
        connection_key=connection_key(connection),
        priority=priority,
    )


def connection_key(connection: MarketplaceConnection) -> str:
    """Names the connection's rate-limit buckets and cached tokens in the client registry."""
    return f"{connection.tenant_id}/{connection.marketplace}"


async def usable_connection(
    session: AsyncSession, store: SecretStore, tenant_id: TenantId
) -> UsableConnection:
    """The tenant's Amazon connection and its authorization, as stored; else a 409 that says
    what to do. Amazon's answer to its next call is the proof."""
    connection = await repository.get_connection(session, tenant_id, AMAZON)
    if connection is None or connection.status in (
        ConnectionStatus.PENDING,
        ConnectionStatus.DISCONNECTED,
    ):
        raise not_connected()
    if connection.status is ConnectionStatus.NEEDS_RECONNECT:
        raise AmazonReconnectRequired(tenant_id, connection.status_reason or REASON_SECRET_MISSING)
    secret = await _read_secret(store, connection)
    return UsableConnection(connection, secret.refresh_token, Region(connection.region or "EU"))


async def require_connected(
    session: AsyncSession, amazon: SpApiApp, store: SecretStore, tenant_id: TenantId
) -> UsableConnection:
    """The tenant's Amazon connection, proven usable now (a new access token); else a 409
    that says what to do."""
    usable = await usable_connection(session, store, tenant_id)
    connection = await verify_with_amazon(
        session, amazon, usable.connection, usable.refresh_token, list_marketplaces=False
    )
    return UsableConnection(connection, usable.refresh_token, usable.region)


async def check_connection(
    session: AsyncSession, amazon: SpApiApp, store: SecretStore, tenant_id: TenantId
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
        secret = await _read_secret(store, connection)
        connection = await verify_with_amazon(
            session, amazon, connection, secret.refresh_token, list_marketplaces=True
        )
    except ConnectionFailure as failure:
        connection = await record_failure(session, failure) or connection
    return to_read(connection)
