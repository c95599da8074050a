"""The FastAPI side of errors: every failure answered as RFC 9457 problem+json.

``KeyBuzzError`` subclasses carry their status and code; invalid requests name their fields; a
database that does not answer is a 503; anything unexpected is a 500 that logs its traceback and
tells the client nothing more.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout
from sqlalchemy.exc import DataError, DBAPIError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from keybuzz.errors import (
    PROBLEM_TYPE_BASE,
    BadRequest,
    DatabaseUnavailable,
    FieldProblem,
    InvalidRequest,
    KeyBuzzError,
    PayloadTooLarge,
    Problem,
    RateLimited,
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
    problem = InvalidRequest(f"Invalid value for: {names}", errors=errors)
    return problem_response(problem.to_problem(request.url.path))


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
    headers = dict(exc.headers) if exc.headers else {}
    if status is HTTPStatus.METHOD_NOT_ALLOWED:
        headers["Allow"] = _allowed_methods(request)
    return problem_response(problem, headers or None)


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "QUERY", "TRACE")


def _allowed_methods(request: Request) -> str:
    """Every method the path answers to. Starlette names only those of the first route that
    matched the path, and a path served by several routes (GET and PATCH of one order) has
    one route per method: each method is tried on every route instead."""
    routes = request.app.router.routes
    return ", ".join(
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    )


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    logger.warning("database unavailable: %s", type(exc).__name__)
    error = DatabaseUnavailable("The database is unreachable; retry in a few seconds.")
    return problem_response(error.to_problem(request.url.path), {"Retry-After": "5"})


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


PROBLEM_SCHEMA = "#/components/schemas/Problem"
API_PREFIX = "/api/"
API_PROBLEMS: tuple[type[KeyBuzzError], ...] = (
    BadRequest,
    InvalidRequest,
    RateLimited,
    DatabaseUnavailable,
)
"""What every ``/api/`` operation may answer, whatever it does: a value PostgreSQL refuses, a
request its description refuses, too many requests, the database down."""
BODY_PROBLEMS: tuple[type[KeyBuzzError], ...] = (PayloadTooLarge,)
"""What every ``/api/`` operation that takes a body may also answer."""
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer", "minimum": 0},
    }
}
_HEADERS: dict[int, dict[str, Any]] = {
    401: {
        "WWW-Authenticate": {
            "description": "`Bearer`: send the tenant's API key.",
            "schema": {"type": "string"},
        }
    },
    429: _RETRY_AFTER,
    503: _RETRY_AFTER,
}


def problem_responses(*errors: type[KeyBuzzError]) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` entry that documents a route's problem answers in OpenAPI: one
    response per status, as ``application/problem+json``, naming every ``code`` it may carry."""
    documented: dict[str, dict[str, Any]] = {}
    for error in errors:
        _add_problem(documented, error)
    return {int(status): response for status, response in documented.items()}


def _add_problem(responses: dict[str, dict[str, Any]], error: type[KeyBuzzError]) -> None:
    key = str(error.status)
    line = f"`{error.code}`: {error.title}."
    response = responses.get(key)
    if response is None or PROBLEM_JSON not in response.get("content", {}):
        response = responses[key] = {
            "description": line,
            "content": {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_SCHEMA}}},
        }
        if error.status in _HEADERS:
            response["headers"] = copy.deepcopy(_HEADERS[error.status])
    elif line not in response["description"]:
        response["description"] += f" {line}"


def openapi_with_problems(
    app: FastAPI,
    *,
    authentication: Iterable[type[KeyBuzzError]],
    security: Callable[[str], list[dict[str, list[str]]]],
) -> Callable[[], dict[str, Any]]:
    """The app's ``openapi()``: FastAPI's description, with the problems that any ``/api/``
    operation may answer documented on each of them, once, here (``API_PROBLEMS``, then
    ``authentication``'s on operations that need a key, ``BODY_PROBLEMS`` on those that take
    a body), and every problem as ``application/problem+json``, FastAPI's 422 included. An
    authenticated operation's requirements are ``security(method)``: which schemes go
    together, which FastAPI cannot tell."""
    authentication = tuple(authentication)
    generate = app.openapi  # FastAPI's, which keeps what it made in app.openapi_schema

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(problem.pop("$defs", {}))
        components["Problem"] = problem
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                if operation.get("security"):
                    operation["security"] = security(method)
                _document_problems(path, operation, authentication)
        return schema

    return openapi


def _document_problems(
    path: str, operation: dict[str, Any], authentication: tuple[type[KeyBuzzError], ...]
) -> None:
    responses: dict[str, dict[str, Any]] = operation["responses"]
    problems: list[type[KeyBuzzError]] = []
    validation = responses.get("422")
    if validation is not None and PROBLEM_JSON not in validation.get("content", {}):
        del responses["422"]  # FastAPI's own, as application/json: ours is a problem
        problems.append(InvalidRequest)
    if path.startswith(API_PREFIX):
        problems += API_PROBLEMS
        if operation.get("security"):
            problems += authentication
        if "requestBody" in operation:
            problems += BODY_PROBLEMS
    for error in problems:
        _add_problem(responses, error)
