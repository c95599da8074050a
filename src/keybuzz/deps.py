"""Dependencies shared by every route: the request's transaction and its authenticated tenant."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import (
    APIKeyCookie,
    APIKeyHeader,
    HTTPAuthorizationCredentials,
    HTTPBearer,
)
from sqlalchemy.ext.asyncio import AsyncSession

from keybuzz.db import transaction
from keybuzz.errors import Unauthenticated
from keybuzz.marketplaces.service import ConnectionFailure, record_failure_apart
from keybuzz.reads import Reads
from keybuzz.runtime import Runtime
from keybuzz.secrets import SecretStore
from keybuzz.tenants import service as tenants
from keybuzz.tenants.models import TenantId
from keybuzz.tenants.service import Credentials


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    """The request's one transaction: committed before the response is sent, else rolled back.

    A request that fails on a dead Amazon connection rolls back; what the failure means for the
    connection is then recorded apart, so that the connection never looks live.
    """
    try:
        async with transaction(runtime.sessionmaker) as session:
            yield session
    except ConnectionFailure as failure:
        await record_failure_apart(runtime.sessionmaker, failure)
        raise


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


def get_secret_store(runtime: RuntimeDep, session: SessionDep) -> SecretStore:
    """The secret store, working inside the request's transaction (local backend)."""
    return runtime.secrets.store(session)


SecretStoreDep = Annotated[SecretStore, Depends(get_secret_store)]

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="The tenant's API key (`keybuzz tenants create` prints it once).",
)
_tenant_header = APIKeyHeader(
    name="X-Tenant-Id",
    auto_error=False,
    scheme_name="TenantId",
    description="The tenant the API key belongs to, e.g. `ecomlg-001`.",
)


SESSION_COOKIE = "kb_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_session_cookie = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    scheme_name="BrowserSession",
    description="The Orders page's session (sign in at `/orders` with the API key); "
    "state-changing requests must then carry `X-CSRF-Token`.",
)
_csrf_header = APIKeyHeader(
    name=CSRF_HEADER,
    auto_error=False,
    scheme_name="CsrfToken",
    description="With the session cookie only: the page's CSRF token, on POST, PATCH, DELETE.",
)


def get_credentials(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    tenant_header: Annotated[str | None, Depends(_tenant_header)],
    session_token: Annotated[str | None, Depends(_session_cookie)],
    csrf_header: Annotated[str | None, Depends(_csrf_header)],
) -> Credentials:
    """What the request carries to prove its tenant, not yet checked (no database). A request
    with none is refused here, before its parameters are validated, as it always was."""
    tenants.one_tenant_header(request.headers.getlist(_tenant_header.model.name))
    if credentials is None and not session_token:
        raise Unauthenticated("Send `Authorization: Bearer <API key>`.")
    return Credentials(
        bearer_key=credentials.credentials if credentials else None,
        tenant_header=tenant_header,
        session_token=session_token,
        csrf_header=csrf_header,
        changes_state=request.method not in SAFE_METHODS,
    )


CredentialsDep = Annotated[Credentials, Depends(get_credentials)]


async def get_tenant(session: SessionDep, credentials: CredentialsDep) -> TenantId:
    """The API key when one is sent (a browser never adds it by itself, so no CSRF check);
    otherwise the Orders page's session cookie, with its CSRF token on changes."""
    if credentials.by_session:
        assert credentials.session_token is not None
        return await tenants.authenticate_session(
            session,
            session_token=credentials.session_token,
            tenant_header=credentials.tenant_header,
            csrf_header=credentials.csrf_header,
            changes_state=credentials.changes_state,
        )
    return await tenants.authenticate(
        session, bearer_key=credentials.bearer_key, tenant_header=credentials.tenant_header
    )


TenantDep = Annotated[TenantId, Depends(get_tenant)]


def get_reads(runtime: RuntimeDep) -> Reads:
    """The read path's one-round-trip transactions (``keybuzz.reads``), on the runtime's pool."""
    return Reads.on_pool(runtime.read_pool)


ReadsDep = Annotated[Reads, Depends(get_reads)]
