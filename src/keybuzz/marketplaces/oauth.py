"""Website authorization with Amazon: start a consent, then complete it at the callback.

``state`` carries 256 random bits, is stored only as a hash, is bound to the tenant that started
it and to that browser (a cookie), lives 10 minutes and is used once. A callback that fails any
check stores nothing and never calls Amazon.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from urllib.parse import unquote

from sqlalchemy.ext.asyncio import AsyncSession

from keybuzz.amazon.client import SpApiApp
from keybuzz.amazon.config import SpApiConfig
from keybuzz.amazon.errors import (
    AmazonAppCredentialsInvalid,
    AmazonAuthorizationRevoked,
    AmazonUnavailable,
)
from keybuzz.amazon.lwa import LwaGrant
from keybuzz.amazon.regions import MARKETPLACES, Region, consent_url, region_of
from keybuzz.amazon.windows import LATEST_BEFORE
from keybuzz.config import Settings
from keybuzz.errors import InvalidInput, KeyBuzzError
from keybuzz.marketplaces import repository
from keybuzz.marketplaces.models import ConnectionStatus, MarketplaceConnection, OAuthState
from keybuzz.marketplaces.schemas import OAuthStart, OAuthStarted
from keybuzz.marketplaces.service import (
    AMAZON,
    AmazonUnreachable,
    ConnectionFailure,
    connection_failure,
    record_failure,
    verify_with_amazon,
)
from keybuzz.secrets import (
    AmazonSpapiSecret,
    SecretConflict,
    SecretStore,
    SecretUnreadable,
    read_amazon_spapi,
    write_amazon_spapi,
)
from keybuzz.tenants.models import TenantId

logger = logging.getLogger(__name__)

STATE_LIFETIME = dt.timedelta(minutes=10)
STATE_KEPT_EXPIRED = dt.timedelta(hours=1)
"""How long an expired state is kept: a seller coming back late is told the link expired, not
that KeyBuzz never issued it."""
CALLBACK_PATH = "/api/v1/marketplaces/amazon/oauth/callback"
BINDING_COOKIE = "kb_amazon_oauth"
DEFAULT_RETURN_PATH = "/orders"
UNREACHABLE_ADVICE = "Amazon could not be reached. Start the connection again."
_UNSAFE_PATH_CHARACTERS = re.compile(r"[\x00-\x20\x7f\\]")


class OAuthFailure(KeyBuzzError):
    """The callback cannot complete; shown to the seller as a page, never as a stack trace."""

    status = 400
    code = "oauth_failed"
    title = "The Amazon connection could not be completed"


class OAuthStateInvalid(OAuthFailure):
    code = "oauth_state_invalid"
    title = "This authorization link is not valid"


class OAuthRefused(OAuthFailure):
    code = "oauth_refused"
    title = "Amazon did not authorize the connection"


class OAuthAccountTaken(OAuthFailure):
    status = 409
    code = "oauth_account_in_use"
    title = "This Amazon account is connected to another KeyBuzz account"


class OAuthAmazonFailed(OAuthFailure):
    status = 502
    code = "oauth_amazon_failed"
    title = "Amazon did not complete the authorization"


def hash_secret(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def redirect_uri(settings: Settings) -> str:
    return settings.oauth_redirect_uri or settings.public_url.rstrip("/") + CALLBACK_PATH


def safe_return_path(raw: str | None) -> str:
    """A path on this site, or an error: nothing that a browser could read as another origin."""
    if raw is None or raw == "":
        return DEFAULT_RETURN_PATH
    decoded = raw
    for _ in range(3):
        decoded = unquote(decoded)
    for candidate in (raw, decoded):
        if (
            not candidate.startswith("/")
            or candidate.startswith("//")
            or _UNSAFE_PATH_CHARACTERS.search(candidate)
            or ":" in candidate.split("?", 1)[0]
        ):
            raise InvalidInput("returnPath", "must be a path of this site, like /orders")
    return raw


def _region(request: OAuthStart) -> Region:
    if request.marketplace_id is not None:
        if request.marketplace_id not in MARKETPLACES:
            raise InvalidInput("marketplaceId", "not an Amazon marketplace id")
        region = region_of(request.marketplace_id)
        if request.region is not None and request.region.upper() != region.value:
            raise InvalidInput("region", f"{request.marketplace_id} belongs to {region.value}")
        return region
    if request.region is None:
        raise InvalidInput("region", "give the region (NA, EU, FE) or a marketplaceId")
    try:
        return Region(request.region.upper())
    except ValueError:
        raise InvalidInput("region", "one of NA, EU, FE") from None


@dataclass(frozen=True)
class StartedConsent:
    response: OAuthStarted
    browser_binding: str


async def start(
    session: AsyncSession,
    config: SpApiConfig,
    redirect_uri: str,
    tenant_id: TenantId,
    request: OAuthStart,
) -> StartedConsent:
    region = _region(request)
    return_path = safe_return_path(request.return_path)
    state, binding = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    expires_at = dt.datetime.now(dt.UTC) + STATE_LIFETIME
    session.add(
        OAuthState(
            state_hash=hash_secret(state),
            binding_hash=hash_secret(binding),
            tenant_id=tenant_id,
            marketplace=AMAZON,
            region=region.value,
            return_path=return_path,
            expires_at=expires_at,
        )
    )
    connection = await repository.get_connection(session, tenant_id, AMAZON)
    if connection is None:
        await repository.create_connection(
            session,
            tenant_id,
            AMAZON,
            region=region.value,
            status=ConnectionStatus.PENDING,
            status_reason="Waiting for the seller's consent on Amazon.",
        )
    elif connection.status is ConnectionStatus.DISCONNECTED:
        await repository.update_connection(
            session,
            connection,
            status=ConnectionStatus.PENDING,
            status_reason="Waiting for the seller's consent on Amazon.",
        )
    await session.flush()
    url = consent_url(
        config,
        region,
        state=state,
        redirect_uri=redirect_uri,
        marketplace_id=request.marketplace_id,
    )
    return StartedConsent(OAuthStarted(auth_url=url, expires_at=expires_at), binding)


@dataclass(frozen=True)
class CallbackParams:
    state: str | None
    selling_partner_id: str | None
    code: str | None
    error: str | None
    error_description: str | None
    browser_binding: str | None


async def purge_expired_states(session: AsyncSession) -> int:
    """Delete the consent states expired more than ``STATE_KEPT_EXPIRED`` ago; how many."""
    now = dt.datetime.now(dt.UTC)
    return await repository.delete_expired_states(session, now - STATE_KEPT_EXPIRED)


async def _consume_state(session: AsyncSession, params: CallbackParams) -> OAuthState:
    if not params.state:
        raise OAuthStateInvalid("The link has no state. Start the connection again from KeyBuzz.")
    state_hash = hash_secret(params.state)
    tenant_id = await repository.bind_tenant_of_state(session, state_hash)
    found = (
        None if tenant_id is None else await repository.find_state(session, tenant_id, state_hash)
    )
    if tenant_id is None or found is None:
        raise OAuthStateInvalid("This link was not issued by KeyBuzz. Start the connection again.")
    binding = params.browser_binding or ""
    if not hmac.compare_digest(found.binding_hash, hash_secret(binding)):
        raise OAuthStateInvalid(
            "This link was started in another browser or by another account. Start the "
            "connection again from this browser."
        )
    now = dt.datetime.now(dt.UTC)
    consumed = await repository.consume_state(session, tenant_id, state_hash, now)
    if consumed is None:
        if found.used_at is not None:
            raise OAuthStateInvalid("This link was already used. Start the connection again.")
        raise OAuthStateInvalid("This link expired (10 minutes). Start the connection again.")
    return consumed


async def complete(
    session: AsyncSession,
    amazon: SpApiApp,
    store: SecretStore,
    params: CallbackParams,
    redirect_uri: str,
) -> str:
    """Finish a consent; returns the path to send the browser to. A failure is raised once all
    the rest is rolled back: the state stays used, and the connection says what the failure
    means for it, if anything (Amazon unreachable means nothing: the seller starts again)."""
    state = await _consume_state(session, params)
    try:
        async with session.begin_nested():
            return await _connect(session, amazon, store, state, params, redirect_uri)
    except AmazonUnreachable as unreachable:
        raise OAuthAmazonFailed(UNREACHABLE_ADVICE) from unreachable
    except ConnectionFailure as failure:
        await record_failure(session, failure)
        raise


async def _connect(
    session: AsyncSession,
    amazon: SpApiApp,
    store: SecretStore,
    state: OAuthState,
    params: CallbackParams,
    redirect_uri: str,
) -> str:
    tenant_id = TenantId(state.tenant_id)
    if params.error:
        description = params.error_description or "The seller did not consent."
        raise OAuthRefused(f"Amazon answered {params.error}: {description[:300]}")
    if not params.code or not params.selling_partner_id:
        raise OAuthStateInvalid("Amazon's answer is incomplete. Start the connection again.")
    await repository.lock_seller(session, AMAZON, params.selling_partner_id)
    if await repository.seller_held_elsewhere(session, params.selling_partner_id, tenant_id):
        raise OAuthAccountTaken(
            "This Amazon seller account is already connected to another KeyBuzz account; "
            "disconnect it there first."
        )
    connection = await repository.get_connection(session, tenant_id, AMAZON)
    assert connection is not None, "a connection row is created with every state"
    grant = await _exchange_code(amazon, tenant_id, params.code, redirect_uri)
    region = Region(state.region)
    secret = AmazonSpapiSecret(
        refresh_token=grant.refresh_token,
        selling_partner_id=params.selling_partner_id,
        region=region.value,
        authorized_at=dt.datetime.now(dt.UTC),
    )
    await _store_secret(store, tenant_id, secret)
    await _record_connected(session, amazon, connection, secret, region)
    logger.info("tenant %s connected Amazon seller %s", tenant_id, params.selling_partner_id)
    return state.return_path


async def _exchange_code(
    amazon: SpApiApp, tenant_id: TenantId, code: str, redirect_uri: str
) -> LwaGrant:
    try:
        return await amazon.lwa().exchange_authorization_code(code=code, redirect_uri=redirect_uri)
    except AmazonAuthorizationRevoked as error:
        raise OAuthAmazonFailed(
            "Amazon refused the authorization code (expired after 5 minutes, or already used). "
            "Start the connection again."
        ) from error
    except AmazonAppCredentialsInvalid as error:
        failure = connection_failure(error, tenant_id)
        assert failure is not None
        raise failure from error
    except AmazonUnavailable as error:
        raise OAuthAmazonFailed(UNREACHABLE_ADVICE) from error


async def _store_secret(store: SecretStore, tenant_id: TenantId, secret: AmazonSpapiSecret) -> None:
    """Write with check-and-set; a concurrent writer makes us re-read once and try again."""
    for attempt in range(2):
        try:
            found = await read_amazon_spapi(store, tenant_id)
            version = found.version
        except SecretUnreadable as unreadable:
            version = unreadable.version
        try:
            await write_amazon_spapi(store, tenant_id, secret, cas=version)
            return
        except SecretConflict:
            if attempt == 1:
                raise


async def _record_connected(
    session: AsyncSession,
    amazon: SpApiApp,
    connection: MarketplaceConnection,
    secret: AmazonSpapiSecret,
    region: Region,
) -> None:
    now = dt.datetime.now(dt.UTC)
    connection = await repository.update_connection(
        session,
        connection,
        region=region.value,
        selling_partner_id=secret.selling_partner_id,
        connected_at=now,
        # Changes from now on come with the incremental sync; a backfill brings the past.
        synced_through=connection.synced_through or now - LATEST_BEFORE,
    )
    await verify_with_amazon(
        session, amazon, connection, secret.refresh_token, list_marketplaces=True
    )
