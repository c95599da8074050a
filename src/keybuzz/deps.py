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
from keybuzz.orders.reads import Admit
from keybuzz.reads import Reads
from keybuzz.runtime import Runtime
from keybuzz.secrets import SecretStore
from keybuzz.tenants import service as tenants
from keybuzz.tenants.models import TenantId
from keybuzz.tenants.service import Credentials

# The dependencies here do no I/O of their own and are ``async def``: FastAPI runs a plain
# ``def`` dependency in its thread pool, a hand-off to a thread and back for each one of every
# request (the order list had four: 0.8 ms of the API's CPU a request together, README "The
# Orders API under load").


async def get_runtime(request: Request) -> Runtime:
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


async def get_secret_store(runtime: RuntimeDep, session: SessionDep) -> SecretStore:
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


async def get_credentials(
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


def rate_limit_bucket(credentials: Credentials) -> str:
    """The rate-limit bucket of a credential: ``key:<hash>`` for an API key, ``session:<hash>``
    for the Orders page's cookie."""
    if credentials.by_session:
        assert credentials.session_token is not None
        return f"session:{tenants.hash_api_key(credentials.session_token)[:32]}"
    return f"key:{tenants.hash_api_key(credentials.bearer_key or '')[:32]}"


@dataclass(frozen=True)
class Caller:
    """Who sends a request: its tenant, and the rate-limit bucket of its credential."""

    tenant_id: TenantId
    credential: str


async def _authenticate(
    runtime: Runtime, session: AsyncSession, credentials: Credentials
) -> Caller:
    """The API key when one is sent (a browser never adds it by itself, so no CSRF check);
    otherwise the Orders page's session cookie, with its CSRF token on changes."""
    bucket = rate_limit_bucket(credentials)
    try:
        if credentials.by_session:
            assert credentials.session_token is not None
            tenant_id = await tenants.authenticate_session(
                session,
                session_token=credentials.session_token,
                tenant_header=credentials.tenant_header,
                csrf_header=credentials.csrf_header,
                changes_state=credentials.changes_state,
            )
        else:
            tenant_id = await tenants.authenticate(
                session, bearer_key=credentials.bearer_key, tenant_header=credentials.tenant_header
            )
    except Unauthenticated:
        runtime.rate_limits.forget(bucket)
        raise
    return Caller(tenant_id, bucket)


async def get_caller(
    runtime: RuntimeDep, session: SessionDep, credentials: CredentialsDep
) -> Caller:
    """The authenticated caller, taking no token of the rate limits (the authentication of a
    request with a body before it is read). A credential this process saw over its rate limit a
    moment ago is refused before the database is asked."""
    await runtime.rate_limits.refuse_if_over(rate_limit_bucket(credentials))
    return await _authenticate(runtime, session, credentials)


CallerDep = Annotated[Caller, Depends(get_caller)]


async def get_tenant(
    runtime: RuntimeDep, session: SessionDep, credentials: CredentialsDep
) -> TenantId:
    """The authenticated tenant, once the request has taken its tokens of the rate limits
    (``KEYBUZZ_RATE_LIMIT_*``): one of its key's (or session's) bucket, one of its tenant's.

    A credential this process has served before takes them before it is authenticated, while
    the request's transaction holds no connection yet: it may wait for them there. Otherwise
    they are taken once the tenant is known; the transaction then holds a connection, so the
    request is refused rather than made to wait (only a credential's first request in a
    process)."""
    bucket = rate_limit_bucket(credentials)
    admitted = await runtime.rate_limits.admit(bucket)
    caller = await _authenticate(runtime, session, credentials)
    if not admitted:
        await runtime.rate_limits.take(bucket, caller.tenant_id, may_wait=False)
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


async def get_reads(runtime: RuntimeDep) -> Reads:
    """The read path's one-round-trip transactions (``keybuzz.reads``), on the runtime's pool."""
    return Reads.on_pool(runtime.read_pool)


ReadsDep = Annotated[Reads, Depends(get_reads)]


async def get_admission(runtime: RuntimeDep, credentials: CredentialsDep) -> AsyncIterator[Admit]:
    """For the read path, which checks its credential in its own statement: a credential this
    process has served before takes its rate limits' tokens (waiting for them, or refused)
    before the database is asked; another takes them once the read has told its tenant (the
    read's connection is back in its pool by then, so it may wait too)."""
    bucket = rate_limit_bucket(credentials)
    admitted = await runtime.rate_limits.admit(bucket)

    async def admit(tenant_id: TenantId) -> None:
        if not admitted:
            await runtime.rate_limits.take(bucket, tenant_id)

    try:
        yield admit
    except Unauthenticated:
        runtime.rate_limits.forget(bucket)
        raise


AdmitDep = Annotated[Admit, Depends(get_admission)]
