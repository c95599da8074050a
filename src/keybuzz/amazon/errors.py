"""What can go wrong when KeyBuzz talks to Amazon, as typed errors with stable codes.

Messages name the operation, Amazon's error code and request id, never a token, an
authorization code or a buyer's name, email or address: they end up in logs and in problem
details shown to the helpdesk.
"""

from __future__ import annotations

import math
import re

from keybuzz.errors import KeyBuzzError

# LWA access and refresh tokens (Atza|, Atzr|) and restricted data tokens (Atz.sprdt|).
_TOKEN = re.compile(r"Atz[a-z.]*\|[^\s\"',;]+")


def scrub(text: str) -> str:
    """``text`` with anything shaped like an Amazon token replaced, before it is logged."""
    return _TOKEN.sub("[redacted]", text)


class AmazonError(KeyBuzzError):
    """Base of every Amazon failure: Amazon, not KeyBuzz, is why the work could not be done."""

    status = 502
    code = "amazon_error"
    title = "Amazon error"


class AmazonAuthorizationRevoked(AmazonError):
    """LWA ``invalid_grant`` on a refresh token: the seller must connect the account again."""

    status = 409
    code = "amazon_authorization_revoked"
    title = "Amazon credentials revoked or expired — reconnect"


class AmazonAuthorizationCodeInvalid(AmazonAuthorizationRevoked):
    """LWA ``invalid_grant`` on an authorization code: expired (5 min), used, or wrong redirect."""

    code = "amazon_authorization_code_invalid"
    title = "Amazon authorization code invalid, expired or already used — connect again"


class AmazonAppCredentialsInvalid(AmazonError):
    """LWA ``invalid_client`` / ``unauthorized_client``: KeyBuzz's own app credentials."""

    code = "amazon_app_credentials_invalid"
    title = "Amazon application credentials wrong or not rotated"


class AmazonAccessDenied(AmazonError):
    """SP-API 403 even with a freshly minted token: a missing role or an unauthorised app."""

    code = "amazon_access_denied"
    title = "Amazon denied access to this resource"


class AmazonNotFound(AmazonError):
    status = 404
    code = "amazon_not_found"
    title = "Not found at Amazon"


class AmazonInvalidRequest(AmazonError):
    """Amazon refused the request as malformed (400): a KeyBuzz bug or an out-of-range input."""

    code = "amazon_invalid_request"
    title = "Amazon rejected the request"


class AmazonUnavailable(AmazonError):
    """5xx, timeouts or dropped connections that outlasted the bounded retries."""

    status = 503
    code = "amazon_unavailable"
    title = "Amazon is unavailable"


class AmazonThrottled(AmazonError):
    """Still 429 after the bounded retries: another app or a lower usage plan shares the quota."""

    status = 503
    code = "amazon_throttled"
    title = "Amazon throttled the requests"


class AmazonQuotaExhausted(AmazonError):
    """The seller's quota for an operation is spent and the caller would not wait that long:
    ``retry_after`` says in how many seconds the next request may go (``Retry-After``)."""

    status = 429
    code = "amazon_quota_exhausted"
    title = "Amazon quota for this operation is spent — try again later"

    def __init__(self, detail: str | None = None, *, retry_after: float) -> None:
        seconds = max(1, math.ceil(retry_after))
        super().__init__(detail, headers={"Retry-After": str(seconds)})
        self.retry_after = retry_after


class AmazonApiUnavailable(AmazonError):
    """Amazon refuses an API to this seller (403) or no longer serves it (404, e.g. Orders v0
    after its removal): the caller stops using that API rather than retrying it."""

    code = "amazon_api_unavailable"
    title = "Amazon does not serve this API for the seller"

    def __init__(self, detail: str | None = None, *, api: str) -> None:
        super().__init__(detail)
        self.api = api


class AmazonMalformedResponse(AmazonError):
    code = "amazon_malformed_response"
    title = "Amazon sent a response KeyBuzz cannot read"


class AmazonReportFailed(AmazonError):
    """A report ended ``FATAL`` (a report that ends ``CANCELLED`` simply has no data)."""

    code = "amazon_report_failed"
    title = "Amazon could not generate the report"
