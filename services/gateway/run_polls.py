"""The fast path of ``GET /v1/runs/{run_id}``: a plain ASGI middleware.

Polls are most of the gateway's requests, and a thousand clients long-polling one run are a
thousand answers each time it changes. Through FastAPI each answer matched the path against
every route and solved the route's dependencies, the larger part of its cost; this answers a
well-formed poll directly (same key check, same ``run_reads.answer``). Anything else —
another path or method, a query it does not know, a ``wait`` out of range — goes on to the
app, whose route validates and answers it as before.
"""

from __future__ import annotations

import math
from urllib.parse import parse_qsl

from fastapi import Request
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from services.gateway import run_reads
from services.gateway.auth import tenant_of
from services.gateway.problem_handlers import problem_response
from services.gateway.problems import Problem

PREFIX = "/v1/runs/"


def poll_wait(query_string: bytes) -> float | None:
    """The poll's ``wait`` (0 without one); None when the query is not a plain poll's."""
    try:
        pairs = parse_qsl(query_string.decode("ascii"), strict_parsing=bool(query_string))
    except (UnicodeDecodeError, ValueError):
        return None
    if not pairs:
        return 0.0
    if len(pairs) != 1 or pairs[0][0] != "wait":
        return None
    try:
        wait = float(pairs[0][1])
    except ValueError:
        return None
    return wait if math.isfinite(wait) and 0 <= wait <= run_reads.MAX_WAIT_S else None


def run_id_of(path: str) -> str | None:
    run_id = path[len(PREFIX) :] if path.startswith(PREFIX) else ""
    return run_id if run_id and "/" not in run_id else None


class RunPolls:
    def __init__(self, app: ASGIApp, route: BaseRoute | None = None) -> None:
        self.app = app
        self.route = route
        """The route it stands in for: what request metrics label its requests with."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        run_id = run_id_of(scope["path"]) if scope["type"] == "http" else None
        wait = poll_wait(scope["query_string"]) if run_id is not None else None
        if run_id is None or wait is None or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        scope["route"] = self.route
        request = Request(scope, receive)
        try:
            tenant = await tenant_of(request)
            response = await run_reads.answer(
                request, tenant, run_id, wait, request.headers.get("if-none-match")
            )
        except Problem as problem:
            response = problem_response(problem, request)
        await response(scope, receive, send)
