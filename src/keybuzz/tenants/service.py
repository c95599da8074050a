"""Tenants and their API keys; the one place that turns a credential into a ``TenantId``."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from keybuzz.db import TENANT_SETTING, bind_tenant_of
from keybuzz.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    Unauthenticated,
)
from keybuzz.tenants.models import TENANT_ID_PATTERN, ApiKey, BrowserSession, Tenant, TenantId
from keybuzz.tenants.schemas import CreatedTenant, TenantRead

API_KEY_PREFIX = "kb_"


class TenantExists(Conflict):
    code = "tenant_exists"
    title = "Tenant already exists"


class TenantNotFound(NotFound):
    code = "tenant_not_found"
    title = "Tenant not found"


class TenantMismatch(Forbidden):
    code = "tenant_forbidden"
    title = "This API key does not belong to that tenant"


class AmbiguousTenant(BadRequest):
    code = "ambiguous_tenant"
    title = "More than one tenant named"


def one_tenant_header(values: list[str]) -> None:
    """The ``X-Tenant-Id`` values a request carries name one tenant, or none; two headers, or
    one listing several (``tenant-a, tenant-b``, as a proxy joins them), are refused."""
    if len(values) > 1 or any("," in value for value in values):
        raise AmbiguousTenant("Send one `X-Tenant-Id` header naming one tenant.")


class CsrfTokenInvalid(Forbidden):
    code = "csrf_token_invalid"
    title = "Missing or wrong CSRF token"


@dataclass(frozen=True)
class SignedIn:
    tenant_id: TenantId
    session_token: str
    """The browser's cookie; only its hash is stored."""


def hash_api_key(raw_key: str) -> str:
    # A generated key carries 256 bits of randomness, so a fast hash is enough to store it.
    return hashlib.sha256(raw_key.encode()).hexdigest()


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def validate_tenant_id(raw: str) -> TenantId:
    if not re.fullmatch(TENANT_ID_PATTERN, raw):
        raise InvalidInput(
            "tenant",
            "2-64 characters: lowercase letters, digits, '-' or '_', starting with a letter "
            "or digit",
        )
    return TenantId(raw)


async def create_tenant(session: AsyncSession, tenant_id: str, name: str | None) -> CreatedTenant:
    valid_id = validate_tenant_id(tenant_id)
    if await session.get(Tenant, valid_id) is not None:
        raise TenantExists(f"Tenant {valid_id} already exists.")
    tenant = Tenant(id=valid_id, name=name or valid_id)
    session.add(tenant)
    await session.flush()
    raw_key = await _add_api_key(session, valid_id)
    await session.refresh(tenant)
    read = TenantRead(id=tenant.id, name=tenant.name, created_at=tenant.created_at, active_keys=1)
    return CreatedTenant(tenant=read, api_key=raw_key)


async def issue_api_key(session: AsyncSession, tenant_id: TenantId) -> str:
    await require_tenant(session, tenant_id)
    return await _add_api_key(session, tenant_id)


async def revoke_api_keys(session: AsyncSession, tenant_id: TenantId) -> int:
    await require_tenant(session, tenant_id)
    result = await session.execute(
        update(ApiKey)
        .where(ApiKey.tenant_id == tenant_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def _add_api_key(session: AsyncSession, tenant_id: TenantId) -> str:
    raw_key = new_api_key()
    session.add(ApiKey(tenant_id=tenant_id, key_hash=hash_api_key(raw_key), prefix=raw_key[:10]))
    await session.flush()
    return raw_key


async def require_tenant(session: AsyncSession, tenant_id: str) -> TenantId:
    valid_id = validate_tenant_id(tenant_id)
    if await session.get(Tenant, valid_id) is None:
        raise TenantNotFound(f"No tenant {valid_id}; create it with `keybuzz tenants create`.")
    return valid_id


async def list_tenants(session: AsyncSession) -> list[TenantRead]:
    active_keys = (
        select(func.count())
        .where(ApiKey.tenant_id == Tenant.id, ApiKey.revoked_at.is_(None))
        .scalar_subquery()
    )
    rows = await session.execute(select(Tenant, active_keys).order_by(Tenant.id))
    return [
        TenantRead(id=t.id, name=t.name, created_at=t.created_at, active_keys=count)
        for t, count in rows
    ]


async def authenticate(
    session: AsyncSession, *, bearer_key: str | None, tenant_header: str | None
) -> TenantId:
    """The tenant a request may act for: its key must be valid and belong to ``tenant_header``.
    The statement that finds the key's tenant binds the transaction to it (row-level security):
    no round trip more than the key's lookup."""
    if not bearer_key:
        raise Unauthenticated("Send `Authorization: Bearer <API key>`.")
    key_tenant = await _bind_tenant_of_key(session, bearer_key)
    return key_tenant_allowed(key_tenant, tenant_header)


def key_tenant_allowed(key_tenant: str | None, tenant_header: str | None) -> TenantId:
    """What an API key's lookup found (``None``: unknown or revoked), against ``X-Tenant-Id``."""
    if key_tenant is None:
        raise Unauthenticated("The API key is unknown or revoked.")
    if not tenant_header:
        raise TenantMismatch("Send the `X-Tenant-Id` header naming the tenant of this API key.")
    if tenant_header != key_tenant:
        raise TenantMismatch("This API key does not give access to that tenant.")
    return TenantId(key_tenant)


# --- Browser sessions (the Orders page) ----------------------------------------------------


async def sign_in(session: AsyncSession, raw_key: str, lifetime: dt.timedelta) -> SignedIn:
    """Exchange a valid API key for a browser session of its tenant, tied to that key."""
    key_tenant = await _bind_tenant_of_key(session, raw_key)
    key = None
    if key_tenant is not None:
        key = await session.scalar(
            select(ApiKey).where(
                ApiKey.tenant_id == key_tenant,
                ApiKey.key_hash == hash_api_key(raw_key),
                ApiKey.revoked_at.is_(None),
            )
        )
    if key is None:
        raise Unauthenticated("The API key is unknown or revoked.")
    tenant_id = TenantId(key.tenant_id)
    await session.execute(
        delete(BrowserSession).where(
            BrowserSession.tenant_id == tenant_id, BrowserSession.expires_at <= func.now()
        )
    )
    token = secrets.token_urlsafe(32)
    session.add(
        BrowserSession(
            tenant_id=tenant_id,
            api_key_id=key.id,
            token_hash=hash_api_key(token),
            expires_at=dt.datetime.now(dt.UTC) + lifetime,
        )
    )
    await session.flush()
    return SignedIn(tenant_id, token)


async def tenant_of_session(session: AsyncSession, session_token: str) -> TenantId | None:
    """The tenant of a live browser session (not expired, its API key not revoked), the
    transaction bound to it."""
    lookup = func.keybuzz_tenant_of_browser_session(hash_api_key(session_token))
    tenant = await bind_tenant_of(session, lookup)
    return None if tenant is None else TenantId(tenant)


async def _bind_tenant_of_key(session: AsyncSession, raw_key: str) -> TenantId | None:
    """The tenant of a valid (unrevoked) API key, the transaction bound to it."""
    tenant = await bind_tenant_of(session, func.keybuzz_tenant_of_api_key(hash_api_key(raw_key)))
    return None if tenant is None else TenantId(tenant)


async def sign_out(session: AsyncSession, tenant_id: TenantId, session_token: str) -> None:
    await session.execute(
        delete(BrowserSession).where(
            BrowserSession.tenant_id == tenant_id,
            BrowserSession.token_hash == hash_api_key(session_token),
        )
    )


def csrf_token(session_token: str) -> str:
    """The token a signed-in page sends back with every state-changing request: derived from
    the session's secret, so it needs no storage and another site can neither read nor forge
    it, and it does not reveal the session's own token."""
    digest = hmac.new(session_token.encode(), b"keybuzz-csrf", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


async def authenticate_session(
    session: AsyncSession,
    *,
    session_token: str,
    tenant_header: str | None,
    csrf_header: str | None,
    changes_state: bool,
) -> TenantId:
    """The tenant a browser's request may act for, through its session cookie. A request that
    changes something must also carry the page's CSRF token: a cookie alone proves nothing
    about which page sent the request."""
    tenant_id = await tenant_of_session(session, session_token)
    return session_tenant_allowed(
        tenant_id,
        session_token=session_token,
        tenant_header=tenant_header,
        csrf_header=csrf_header,
        changes_state=changes_state,
    )


def session_tenant_allowed(
    tenant_id: str | None,
    *,
    session_token: str,
    tenant_header: str | None,
    csrf_header: str | None,
    changes_state: bool,
) -> TenantId:
    """What a session's lookup found (``None``: ended), against ``X-Tenant-Id`` and the CSRF
    token."""
    if tenant_id is None:
        raise Unauthenticated("The session has ended; sign in again with the API key.")
    if tenant_header and tenant_header != tenant_id:
        raise TenantMismatch("This session does not give access to that tenant.")
    expected = csrf_token(session_token).encode()
    if changes_state and not hmac.compare_digest((csrf_header or "").encode(), expected):
        raise CsrfTokenInvalid("Send the page's `X-CSRF-Token` header with the session cookie.")
    return TenantId(tenant_id)


# --- Credentials checked in the read path's one round trip (keybuzz.reads) -------------------


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a request carries to prove its tenant, as sent, not yet checked."""

    bearer_key: str | None
    tenant_header: str | None
    session_token: str | None
    csrf_header: str | None
    changes_state: bool

    @property
    def by_session(self) -> bool:
        """The Orders page's cookie is used only when no API key is sent (as ``get_tenant``)."""
        return self.bearer_key is None and bool(self.session_token)


# Each returns the credential's tenant (NULL: none) and sets it as the transaction's tenant
# (TENANT_SETTING), in the statement that checks it: no round trip of its own, and only a tenant
# the credential proves is ever set. The lookups run with the owner's rights (migration 0009):
# until its tenant is bound, the app's role sees no tenant's rows, api_keys' included.
_KEY_CHECK = (
    f"SELECT nullif(set_config('{TENANT_SETTING}',"
    " keybuzz_tenant_of_api_key(%(credential)s), true), '')"
)
_SESSION_CHECK = (
    f"SELECT nullif(set_config('{TENANT_SETTING}',"
    " keybuzz_tenant_of_browser_session(%(credential)s), true), '')"
)


def credential_check(credentials: Credentials) -> tuple[str, dict[str, str]]:
    """The statement that checks ``credentials`` (SQL, parameters); it returns the tenant found,
    if any, and sets the transaction's tenant to it. A request with no credential at all is
    refused here, before any statement."""
    if credentials.by_session:
        assert credentials.session_token is not None
        return _SESSION_CHECK, {"credential": hash_api_key(credentials.session_token)}
    if not credentials.bearer_key:
        raise Unauthenticated("Send `Authorization: Bearer <API key>`.")
    return _KEY_CHECK, {"credential": hash_api_key(credentials.bearer_key)}


def checked_tenant(credentials: Credentials, found: str | None) -> TenantId:
    """The tenant ``credentials`` may act for, given what their check found; the same answers
    as ``authenticate`` and ``authenticate_session``."""
    if credentials.by_session:
        assert credentials.session_token is not None
        return session_tenant_allowed(
            found,
            session_token=credentials.session_token,
            tenant_header=credentials.tenant_header,
            csrf_header=credentials.csrf_header,
            changes_state=credentials.changes_state,
        )
    return key_tenant_allowed(found, credentials.tenant_header)
