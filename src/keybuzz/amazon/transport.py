"""One SP-API call, done right: wait for the bucket, send with a timeout, retry what is
transient, map the rest to typed errors, parse the body into its model.

- 2xx: the body is parsed; ``x-amzn-RateLimit-Limit`` adjusts the bucket.
- 429: the bucket is drained (Amazon's is empty, whatever ours thought) and the call waits for
  the next token, backing off further if 429s repeat.
- 500/502/503/504, timeouts, dropped connections, a truncated JSON body: retried with capped,
  jittered exponential backoff, at most ``RetryPolicy.attempts`` tries in all.
- 400 / 403 / 404: typed errors at once (a 403 reaches here only after the auth has retried it
  with a fresh token).
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from pydantic import ValidationError

from keybuzz.amazon.errors import (
    AmazonAccessDenied,
    AmazonError,
    AmazonInvalidRequest,
    AmazonMalformedResponse,
    AmazonNotFound,
    AmazonThrottled,
    scrub,
)
from keybuzz.amazon.models_common import AmazonModel, ErrorList, describe_validation_error
from keybuzz.amazon.operations import Operation
from keybuzz.amazon.ratelimit import BucketSet, Priority, TokenBucket
from keybuzz.amazon.retry import DEFAULT_RETRY, TRANSIENT_ERRORS, Failure, RetryPolicy, retryable

logger = logging.getLogger("keybuzz.amazon")

M = TypeVar("M", bound=AmazonModel)
RATE_LIMIT_HEADER = "x-amzn-RateLimit-Limit"
REQUEST_ID_HEADER = "x-amzn-RequestId"
USER_AGENT = "KeyBuzzOrders/0.1 (Language=Python)"
Params = Sequence[tuple[str, str]]
THROTTLED = "429 QuotaExceeded"
MALFORMED = "truncated or invalid JSON body"


@dataclass(slots=True)
class CallStats:
    """What one client sent and what came back, for tests, benchmarks and logs."""

    requests: Counter[str] = field(default_factory=Counter)
    throttled: int = 0
    retried: int = 0


def _error_summary(response: httpx.Response) -> str:
    try:
        errors = ErrorList.model_validate_json(response.content).errors
    except ValidationError:
        errors = []
    described = "; ".join(f"{e.code}: {e.message}"[:200] for e in errors[:3])
    request_id = response.headers.get(REQUEST_ID_HEADER)
    suffix = f" (request id {request_id})" if request_id else ""
    return scrub(f"HTTP {response.status_code} {described}".rstrip() + suffix)


class SpApiTransport:
    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        auth: httpx.Auth,
        buckets: BucketSet,
        timeout: float,
        retry: RetryPolicy = DEFAULT_RETRY,
        stats: CallStats | None = None,
        priority: Priority = Priority.SYNC,
    ) -> None:
        """``priority``: this client's place among the waiters of the connection's buckets."""
        self._http = http
        self._base_url = base_url.rstrip("/")
        self.auth = auth
        self._buckets = buckets
        self._timeout = httpx.Timeout(timeout)
        self.retry = retry
        self.stats = stats or CallStats()
        self.priority = priority

    def bucket(self, operation: Operation) -> TokenBucket:
        return self._buckets.bucket(operation)

    async def call(
        self,
        operation: Operation,
        model: type[M],
        *,
        path_params: Mapping[str, str] | None = None,
        params: Params | None = None,
        json_body: Any = None,
        auth: httpx.Auth | None = None,
        max_wait: float | None = None,
    ) -> M:
        """``max_wait``: raise ``AmazonQuotaExhausted`` (with the seconds to wait) instead of
        waiting longer than that for the operation's bucket, on any try."""
        bucket = self._buckets.bucket(operation)
        url = self._base_url + operation.url_path(**(path_params or {}))

        async def attempt(number: int) -> M | Failure:
            if number > 1:
                self.stats.retried += 1
            request = self._http.build_request(
                operation.method,
                url,
                params=list(params or ()),
                json=json_body,
                timeout=self._timeout,
                headers={"accept": "application/json", "user-agent": USER_AGENT},
            )
            # The bucket's in-flight slot is held until Amazon has answered: from then on the
            # request has surely reached Amazon's bucket (see ``ratelimit``).
            async with bucket.request(priority=self.priority, max_wait=max_wait):
                self.stats.requests[operation.name] += 1
                started = time.perf_counter()
                try:
                    response = await self._http.send(request, auth=auth or self.auth)
                except TRANSIENT_ERRORS as error:
                    return Failure(
                        f"{type(error).__name__} after {time.perf_counter() - started:.1f} s"
                    )
                # Before the slot frees a waiter: the rate it goes at, and no token after a 429.
                _adopt_rate(bucket, response)
                if response.status_code == 429:
                    bucket.drain()
            status = response.status_code
            logger.debug(
                "%s -> %d in %.0f ms (try %d)",
                operation.name,
                status,
                (time.perf_counter() - started) * 1000,
                number,
            )
            if 200 <= status < 300:
                parsed = _parse(operation, model, response)
                return parsed if parsed is not None else Failure(MALFORMED, AmazonMalformedResponse)
            if status == 429:
                self.stats.throttled += 1
                return Failure(THROTTLED, AmazonThrottled, throttled=True)
            if retryable(status):
                return Failure(f"HTTP {status}")
            raise _typed_error(operation, response)

        return await self.retry.run(operation.name, attempt)


def _adopt_rate(bucket: TokenBucket, response: httpx.Response) -> None:
    header = response.headers.get(RATE_LIMIT_HEADER)
    if header is None:
        return
    try:
        bucket.set_rate(float(header))
    except ValueError:
        logger.debug("ignoring unreadable %s header", RATE_LIMIT_HEADER)


def _typed_error(operation: Operation, response: httpx.Response) -> AmazonError:
    detail = f"{operation.name}: {_error_summary(response)}"
    status = response.status_code
    if status in (401, 403):
        return AmazonAccessDenied(detail)
    if status == 404:
        return AmazonNotFound(detail)
    return AmazonInvalidRequest(detail)


def _parse(operation: Operation, model: type[M], response: httpx.Response) -> M | None:
    """The model, ``None`` if the body is not JSON at all (worth a retry), or raises if the JSON
    does not fit the model (a retry would get the same)."""
    try:
        document = json.loads(response.content)
    except ValueError:
        return None
    try:
        return model.model_validate(document)
    except ValidationError as error:
        raise AmazonMalformedResponse(
            f"{operation.name}: {describe_validation_error(error)}"
        ) from None
