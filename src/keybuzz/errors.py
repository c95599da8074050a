"""Domain errors that carry their HTTP meaning as RFC 9457 problem details.

Free of any web framework, so that adapters (the Amazon client, the secret store) raise them too;
``keybuzz.problems`` renders them for FastAPI.
"""

from __future__ import annotations

import math
from typing import ClassVar

from pydantic import BaseModel, Field

PROBLEM_TYPE_BASE = "https://keybuzz.io/problems/"


class FieldProblem(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details, plus a stable machine-readable ``code``."""

    type: str
    title: str
    status: int
    detail: str | None = None
    code: str
    instance: str | None = None
    errors: list[FieldProblem] | None = Field(
        default=None, description="One entry per invalid input field."
    )
    action: dict[str, str] | None = Field(
        default=None, description="What the caller can do next, e.g. a URL to start OAuth."
    )


class KeyBuzzError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    title: ClassVar[str] = "Internal error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: list[FieldProblem] | None = None,
        action: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.errors = errors
        self.action = action
        self.headers = headers

    def to_problem(self, instance: str | None = None) -> Problem:
        return Problem(
            type=PROBLEM_TYPE_BASE + self.code,
            title=self.title,
            status=self.status,
            detail=self.detail,
            code=self.code,
            instance=instance,
            errors=self.errors,
            action=self.action,
        )


class BadRequest(KeyBuzzError):
    status = 400
    code = "bad_request"
    title = "Bad request"


class InvalidInput(KeyBuzzError):
    """A named input is invalid: ``field`` says which one."""

    status = 400
    code = "invalid_input"
    title = "Invalid input"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", errors=[FieldProblem(field=field, message=message)])


class Unauthenticated(KeyBuzzError):
    status = 401
    code = "unauthenticated"
    title = "Authentication required"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(KeyBuzzError):
    status = 403
    code = "forbidden"
    title = "Forbidden"


class InvalidRequest(KeyBuzzError):
    """The request does not match the API's description (FastAPI's validation): ``errors``
    names each field."""

    status = 422
    code = "validation_error"
    title = "Invalid request"


class NotFound(KeyBuzzError):
    status = 404
    code = "not_found"
    title = "Not found"


class Conflict(KeyBuzzError):
    status = 409
    code = "conflict"
    title = "Conflict"


class PayloadTooLarge(KeyBuzzError):
    """A request body over ``KEYBUZZ_MAX_BODY_BYTES``, refused before it is read."""

    status = 413
    code = "payload_too_large"
    title = "Request body too large"


class RateLimited(KeyBuzzError):
    """Too many requests of one API key or tenant; ``Retry-After`` says when to come back."""

    status = 429
    code = "rate_limited"
    title = "Too many requests"

    def __init__(self, retry_after: float, detail: str | None = None) -> None:
        seconds = max(1, math.ceil(retry_after))
        super().__init__(
            detail or f"Too many requests; retry in {seconds} s.",
            headers={"Retry-After": str(seconds)},
        )


class ServiceUnavailable(KeyBuzzError):
    status = 503
    code = "service_unavailable"
    title = "Service unavailable"


class DatabaseUnavailable(ServiceUnavailable):
    code = "database_unavailable"
    title = "Database unavailable"
