"""Dependencies shared by every route: the request's transaction and its authenticated tenant."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
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
from keybuzz.errors import KeyBuzzError, Unauthenticated
from keybuzz.marketplaces.service import ConnectionFailure, record_failure_apart
from keybuzz.runtime import Runtime
from keybuzz.secrets import SecretStore
from keybuzz.tenants import service as tenants
from keybuzz.tenants.models import TenantId


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


@dataclass(frozen=True)
class Caller:
    """Who sends a request: its tenant, and the rate-limit bucket of its credential."""

    tenant_id: TenantId
    credential: str
    """``key:<hash>`` for an API key, ``session:<hash>`` for the Orders page's cookie."""


def _bucket_of(kind: str, secret: str) -> str:
    return f"{kind}:{tenants.hash_api_key(secret)[:32]}"


async def get_caller(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    tenant_header: Annotated[str | None, Depends(_tenant_header)],
    session_token: Annotated[str | None, Depends(_session_cookie)],
    csrf_header: Annotated[str | None, Depends(_csrf_header)],
) -> Caller:
    """The API key when one is sent (a browser never adds it by itself, so no CSRF check);
    otherwise the Orders page's session cookie, with its CSRF token on changes. A credential
    this process saw over its rate limit a moment ago is refused before the database is asked."""
    tenants.one_tenant_header(request.headers.getlist(_tenant_header.model.name))
    if credentials is None and session_token:
        credential = _bucket_of("session", session_token)
        runtime.rate_limits.refuse_if_over(credential)
        tenant_id = await tenants.authenticate_session(
            session,
            session_token=session_token,
            tenant_header=tenant_header,
            csrf_header=csrf_header,
            changes_state=request.method not in SAFE_METHODS,
        )
        return Caller(tenant_id, credential)
    bearer_key = credentials.credentials if credentials else None
    credential = _bucket_of("key", bearer_key or "")
    if bearer_key:
        runtime.rate_limits.refuse_if_over(credential)
    tenant_id = await tenants.authenticate(
        session, bearer_key=bearer_key, tenant_header=tenant_header
    )
    return Caller(tenant_id, credential)


CallerDep = Annotated[Caller, Depends(get_caller)]


async def get_tenant(caller: CallerDep, runtime: RuntimeDep) -> TenantId:
    """The authenticated tenant, once the request has taken its tokens of the rate limits
    (``KEYBUZZ_RATE_LIMIT_*``): one of its key's (or session's) bucket, one of its tenant's."""
    await runtime.rate_limits.take(caller.credential, caller.tenant_id)
    return caller.tenant_id


TenantDep = Annotated[TenantId, Depends(get_tenant)]
AUTH_PROBLEMS: tuple[type[KeyBuzzError], ...] = (
    tenants.AmbiguousTenant,
    Unauthenticated,
    tenants.TenantMismatch,
    tenants.CsrfTokenInvalid,
)
"""What ``get_tenant`` may answer: every authenticated operation documents them
(``keybuzz.problems.openapi_with_problems``)."""


def security_requirements(method: str) -> list[dict[str, list[str]]]:
    """How ``get_tenant`` authenticates, as OpenAPI states it: the API key *and* its tenant, or
    the Orders page's session (with its CSRF token on changes). FastAPI would list each of its
    four schemes as enough on its own."""
    browser = [_session_cookie.scheme_name]
    if method.upper() not in SAFE_METHODS:
        browser.append(_csrf_header.scheme_name)
    return [
        {_bearer.scheme_name: [], _tenant_header.scheme_name: []},
        {name: [] for name in browser},
    ]
