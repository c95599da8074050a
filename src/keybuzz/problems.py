"""The FastAPI side of errors: every failure answered as RFC 9457 problem+json.

``KeyBuzzError`` subclasses carry their status and code; invalid requests name their fields; a
database that does not answer is a 503; anything unexpected is a 500 that logs its traceback and
tells the client nothing more.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout
from sqlalchemy.exc import DataError, DBAPIError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from keybuzz.errors import (
    PROBLEM_TYPE_BASE,
    BadRequest,
    FieldProblem,
    KeyBuzzError,
    Problem,
    ServiceUnavailable,
)

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


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
    # The read path (keybuzz.reads) speaks psycopg directly, without SQLAlchemy's wrapping.
    app.add_exception_handler(psycopg.OperationalError, _database_error)
    app.add_exception_handler(psycopg.InterfaceError, _database_error)
    app.add_exception_handler(PoolTimeout, _database_error)
    app.add_exception_handler(psycopg.DataError, _refused_data)
    app.add_exception_handler(Exception, _unexpected_error)


async def _database_error_or_unexpected(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DBAPIError)
    if exc.connection_invalidated:
        return await _database_error(request, exc)
    if isinstance(exc, DataError):
        return await _refused_data(request, exc)
    return await _unexpected_error(request, exc)


async def _refused_data(request: Request, exc: Exception) -> JSONResponse:
    """A value PostgreSQL cannot take (a NUL character, a number out of range) came from the
    request: the client's to fix, never a 500. The log says which; the client is not told the
    statement."""
    logger.info(
        "%s %s: PostgreSQL refused a value: %s",
        request.method,
        request.url.path,
        type(exc.orig if isinstance(exc, DataError) else exc).__name__,
    )
    error = BadRequest("A value of the request cannot be stored or searched for.")
    return problem_response(error.to_problem(request.url.path))


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
