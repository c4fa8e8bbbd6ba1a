"""FastAPI exception handlers that answer every error as ``application/problem+json``.

``install_problem_handlers(app)`` once, after creating the app. It covers:

- :class:`~services.gateway.problems.Problem` raised anywhere in a route or dependency;
- ``RequestValidationError`` (bad body, query or path) → 422 ``validation_failed``;
- Starlette's ``HTTPException`` (unknown path 404, wrong method 405, ``HTTPException`` raised
  by FastAPI itself or a route) → the code registered for its status, its headers kept;
- any other exception → 500 ``internal``: logged with its stack trace, never in the body.
  Starlette still re-raises it after answering, so the server logs it too (and Starlette's
  ``TestClient`` raises it unless built with ``raise_server_exceptions=False``).
"""

from __future__ import annotations

import logging
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.gateway.problems import (
    PROBLEM_JSON,
    Problem,
    code_for_status,
    validation_problem,
)

log = logging.getLogger(__name__)


def problem_response(problem: Problem, request: Request | None = None) -> JSONResponse:
    """The response for ``problem``; its ``instance`` is the request's path when not set."""
    instance = problem.instance
    if instance is None and request is not None:
        instance = request.url.path
    return JSONResponse(
        problem.to_body(instance),
        status_code=problem.status,
        headers=problem.headers or None,
        media_type=PROBLEM_JSON,
    )


def _standard_phrase(status: int) -> str | None:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return None


def http_exception_problem(exc: StarletteHTTPException) -> Problem:
    """A problem for a framework ``HTTPException`` (its status and headers kept); one that
    carries its own ``problem`` (raised where a Problem would not get through) answers that."""
    carried = getattr(exc, "problem", None)
    if isinstance(carried, Problem):
        return carried
    status = exc.status_code
    code = code_for_status(status)
    phrase = _standard_phrase(status)
    raw = exc.detail if isinstance(exc.detail, str) else None
    if raw and raw != phrase:
        detail = raw
    elif status == 404:
        detail = "Nothing is served at this path."
    elif status == 405:
        detail = "This path does not accept this method."
    else:
        detail = phrase or f"HTTP error {status}."
    return Problem(code, detail, status=status, headers=dict(exc.headers or {}))


async def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    if exc.status >= 500:
        log.error("problem %s: %s", exc.code, exc.detail)
    return problem_response(exc, request)


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return problem_response(validation_problem(exc.errors()), request)


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return problem_response(http_exception_problem(exc), request)


async def _on_unhandled(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    problem = Problem("internal", "An unexpected error occurred; it has been logged.")
    return problem_response(problem, request)


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` with problem+json (see the module's docstring)."""
    app.add_exception_handler(Problem, _on_problem)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(Exception, _on_unhandled)
