"""Domain errors that carry their HTTP meaning, rendered as RFC 9457 problem details."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
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
    keeps_changes: ClassVar[bool] = False
    """Commit the unit of work's changes before the error propagates (they record the failure)."""

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


class NotFound(KeyBuzzError):
    status = 404
    code = "not_found"
    title = "Not found"


class Conflict(KeyBuzzError):
    status = 409
    code = "conflict"
    title = "Conflict"


class ServiceUnavailable(KeyBuzzError):
    status = 503
    code = "service_unavailable"
    title = "Service unavailable"


def problem_response(problem: Problem, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        problem.model_dump(mode="json", exclude_none=True),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(part) for part in loc if part not in ("query", "body", "path", "header")]
    return ".".join(parts) or "request"


async def _keybuzz_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, KeyBuzzError)
    return problem_response(exc.to_problem(request.url.path), exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        FieldProblem(field=_field_name(tuple(err["loc"])), message=str(err["msg"]))
        for err in exc.errors()
    ]
    names = ", ".join(dict.fromkeys(error.field for error in errors))
    problem = Problem(
        type=PROBLEM_TYPE_BASE + "validation_error",
        title="Invalid request",
        status=422,
        detail=f"Invalid value for: {names}",
        code="validation_error",
        instance=request.url.path,
        errors=errors,
    )
    return problem_response(problem)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = HTTPStatus(exc.status_code)
    code = status.phrase.lower().replace(" ", "_").replace("-", "_")
    detail = exc.detail if isinstance(exc.detail, str) else status.description
    problem = Problem(
        type=PROBLEM_TYPE_BASE + code,
        title=status.phrase,
        status=status.value,
        detail=detail,
        code=code,
        instance=request.url.path,
    )
    return problem_response(problem, dict(exc.headers) if exc.headers else None)


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    logger.warning("database unavailable: %s", type(exc).__name__)
    error = ServiceUnavailable("The database is unreachable; retry in a few seconds.")
    problem = error.to_problem(request.url.path)
    problem = problem.model_copy(update={"code": "database_unavailable"})
    return problem_response(problem, {"Retry-After": "5"})


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    logger.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(KeyBuzzError().to_problem(request.url.path))


def register_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(KeyBuzzError, _keybuzz_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(OperationalError, _database_error)
    app.add_exception_handler(InterfaceError, _database_error)
    app.add_exception_handler(DBAPIError, _database_error_or_unexpected)
    app.add_exception_handler(Exception, _unexpected_error)


async def _database_error_or_unexpected(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DBAPIError)
    if exc.connection_invalidated:
        return await _database_error(request, exc)
    return await _unexpected_error(request, exc)


def problem_responses(*errors: type[KeyBuzzError]) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` entry that documents a route's problem answers in OpenAPI."""
    documented: dict[int | str, dict[str, Any]] = {}
    for error in errors:
        documented[error.status] = {
            "model": Problem,
            "description": error.title,
            "content": {PROBLEM_JSON: {}},
        }
    return documented
