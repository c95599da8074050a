"""Login with Amazon: the token endpoint, and the ``httpx.Auth`` that puts a cached access
token on every SP-API request (spapi.md §5).

One access token per connection, shared by all its concurrent calls; one refresh at a time;
renewed ``REFRESH_MARGIN`` seconds before it expires. A 403 on a token that came from the cache
(Amazon answers 403, not 401, for an expired or revoked token) invalidates it and the request is
sent once more with a fresh one; a 403 on a fresh token is a real denial.
"""

from __future__ import annotations

import abc
import asyncio
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from dataclasses import dataclass

import httpx
from pydantic import SecretStr, ValidationError

from keybuzz.amazon.config import SpApiConfig
from keybuzz.amazon.errors import (
    AmazonAppCredentialsInvalid,
    AmazonAuthorizationCodeInvalid,
    AmazonAuthorizationRevoked,
    AmazonError,
    AmazonInvalidRequest,
    AmazonMalformedResponse,
    scrub,
)
from keybuzz.amazon.models_common import AmazonModel
from keybuzz.amazon.regions import LWA_TOKEN_URL
from keybuzz.amazon.retry import DEFAULT_RETRY, TRANSIENT_ERRORS, Failure, RetryPolicy, retryable

Clock = Callable[[], float]
REFRESH_MARGIN = 120.0
ACCESS_TOKEN_HEADER = "x-amz-access-token"


class LwaGrant(AmazonModel):
    access_token: SecretStr
    refresh_token: SecretStr
    token_type: str = "bearer"
    expires_in: int


class _TokenResponse(AmazonModel):
    access_token: SecretStr
    refresh_token: SecretStr | None = None
    token_type: str = "bearer"
    expires_in: int


class _LwaErrorBody(AmazonModel):
    error: str = ""
    error_description: str = ""


class LwaClient:
    """The LWA token endpoint for KeyBuzz's app (its client id and secret)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        config: SpApiConfig,
        *,
        retry: RetryPolicy = DEFAULT_RETRY,
    ) -> None:
        self._http = http
        self._url = config.lwa_token_url or LWA_TOKEN_URL
        self._client_id = config.lwa_client_id
        self._client_secret = config.lwa_client_secret
        self._timeout = httpx.Timeout(config.timeout_seconds)
        self._retry = retry

    async def exchange_authorization_code(self, *, code: str, redirect_uri: str) -> LwaGrant:
        """The ``spapi_oauth_code`` of the consent redirect (valid 5 minutes) -> refresh token."""
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        body = await self._token(form, "authorization_code")
        if body.refresh_token is None:
            raise AmazonMalformedResponse("LWA authorization_code grant: no refresh_token")
        return LwaGrant(
            access_token=body.access_token,
            refresh_token=body.refresh_token,
            token_type=body.token_type,
            expires_in=body.expires_in,
        )

    async def refresh_access_token(self, *, refresh_token: SecretStr) -> LwaGrant:
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token.get_secret_value()}
        body = await self._token(form, "refresh_token")
        return LwaGrant(
            access_token=body.access_token,
            refresh_token=body.refresh_token or refresh_token,
            token_type=body.token_type,
            expires_in=body.expires_in,
        )

    async def _token(self, form: dict[str, str], grant: str) -> _TokenResponse:
        form = {
            **form,
            "client_id": self._client_id,
            "client_secret": self._client_secret.get_secret_value(),
        }

        async def attempt(number: int) -> _TokenResponse | Failure:
            try:
                response = await self._http.post(self._url, data=form, timeout=self._timeout)
            except TRANSIENT_ERRORS as error:
                return Failure(type(error).__name__)
            if response.status_code == 200:
                try:
                    return _TokenResponse.model_validate_json(response.content)
                except ValidationError:
                    return Failure("unreadable token response", AmazonMalformedResponse)
            if retryable(response.status_code):
                return Failure(f"HTTP {response.status_code}")
            raise _lwa_error(response, grant)

        return await self._retry.run(f"LWA {grant} grant", attempt)


def _lwa_error(response: httpx.Response, grant: str) -> AmazonError:
    try:
        body = _LwaErrorBody.model_validate_json(response.content)
    except ValidationError:
        body = _LwaErrorBody()
    detail = scrub(
        f"LWA {grant} grant: HTTP {response.status_code} {body.error}: "
        f"{body.error_description[:200]}"
    )
    if body.error == "invalid_grant":
        if grant == "authorization_code":
            return AmazonAuthorizationCodeInvalid(detail)
        return AmazonAuthorizationRevoked(detail)
    if body.error in ("invalid_client", "unauthorized_client") or response.status_code == 401:
        return AmazonAppCredentialsInvalid(detail)
    return AmazonInvalidRequest(detail)


@dataclass(frozen=True, slots=True)
class IssuedToken:
    value: SecretStr
    expires_in: float


class TokenCache:
    """One token and its expiry; concurrent callers share one refresh.

    No asyncio lock is kept: a cache outlives event loops (it sits in the connection registry),
    and locks bind to the first loop that waits on them. The in-flight refresh is a task instead.
    """

    def __init__(self, *, margin: float = REFRESH_MARGIN) -> None:
        self._margin = margin
        self._value: SecretStr | None = None
        self._expires_at = 0.0
        self._pending: asyncio.Task[SecretStr] | None = None

    async def get(
        self, fetch: Callable[[], Awaitable[IssuedToken]], clock: Clock
    ) -> tuple[SecretStr, bool]:
        """The token, and whether it was minted for this call (``False``: from the cache)."""
        if self._value is not None and clock() < self._expires_at - self._margin:
            return self._value, False
        return await self.refresh(fetch, clock), True

    async def refresh(self, fetch: Callable[[], Awaitable[IssuedToken]], clock: Clock) -> SecretStr:
        loop = asyncio.get_running_loop()
        pending = self._pending
        if pending is None or pending.done() or pending.get_loop() is not loop:
            pending = loop.create_task(self._fetch(fetch, clock))
            pending.add_done_callback(_retrieve_exception)
            self._pending = pending
        # Shielded: one caller giving up must not cancel the refresh the others wait for.
        return await asyncio.shield(pending)

    async def _fetch(self, fetch: Callable[[], Awaitable[IssuedToken]], clock: Clock) -> SecretStr:
        asked_at = clock()
        issued = await fetch()
        self._value = issued.value
        self._expires_at = asked_at + issued.expires_in
        return issued.value

    def invalidate(self, value: SecretStr) -> None:
        if self._value is not None and self._value.get_secret_value() == value.get_secret_value():
            self._value = None


def _retrieve_exception(task: asyncio.Task[SecretStr]) -> None:
    if not task.cancelled():
        task.exception()


class TokenAuth(httpx.Auth, abc.ABC):
    """Puts ``token()`` in ``x-amz-access-token``; retries a 403 once with a fresh token."""

    def __init__(self, cache: TokenCache, clock: Clock) -> None:
        self._cache = cache
        self._clock = clock

    @abc.abstractmethod
    async def _issue(self) -> IssuedToken:
        """Ask Amazon for a new token."""

    async def token(self) -> tuple[SecretStr, bool]:
        return await self._cache.get(self._issue, self._clock)

    async def refresh(self) -> SecretStr:
        return await self._cache.refresh(self._issue, self._clock)

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        raise RuntimeError("SP-API authentication needs an httpx.AsyncClient")

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token, fresh = await self.token()
        request.headers[ACCESS_TOKEN_HEADER] = token.get_secret_value()
        response = yield request
        if response.status_code != 403 or fresh:
            return
        self._cache.invalidate(token)
        token, _ = await self.token()
        request.headers[ACCESS_TOKEN_HEADER] = token.get_secret_value()
        yield request


class LwaAuth(TokenAuth):
    """A connection's LWA access token, from its refresh token."""

    def __init__(
        self,
        lwa: LwaClient,
        refresh_token: SecretStr,
        cache: TokenCache,
        clock: Clock = time.monotonic,
    ) -> None:
        super().__init__(cache, clock)
        self._lwa = lwa
        self._refresh_token = refresh_token

    async def _issue(self) -> IssuedToken:
        grant = await self._lwa.refresh_access_token(refresh_token=self._refresh_token)
        return IssuedToken(grant.access_token, grant.expires_in)
