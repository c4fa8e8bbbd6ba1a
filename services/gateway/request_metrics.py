"""HTTP request metrics of the gateway: a plain ASGI middleware (no response buffering, so
long-polls and streamed downloads pass through untouched).

Requests are labelled by route template (``/v1/runs/{run_id}``), never by raw path, so the
label set stays bounded. A long-poll (``GET /v1/runs/{run_id}?wait=N``) waits up to N seconds
by design: it goes to its own histogram, or it would drown the latency of everything else.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.runtime import metrics

LONG_POLL_ROUTE = "/v1/runs/{run_id}"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def is_long_poll(method: str, route: str, query_string: bytes) -> bool:
    if method != "GET" or route != LONG_POLL_ROUTE:
        return False
    wait = parse_qs(query_string.decode("latin-1")).get("wait", ["0"])[0]
    try:
        return float(wait) > 0
    except ValueError:
        return False


class RequestMetrics:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        status = 500  # what the client gets when the app raises before answering

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self._observe(scope, status, time.monotonic() - started)

    @staticmethod
    def _observe(scope: Scope, status: int, seconds: float) -> None:
        route: Any = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        method = scope.get("method", "")
        method = method if method in METHODS else "other"  # any string is a method to HTTP
        if is_long_poll(method, template, scope.get("query_string", b"")):
            outcome = "unchanged" if status == 304 else "changed" if status == 200 else "error"
            metrics.HTTP_LONG_POLL_DURATION.labels(outcome=outcome).observe(seconds)
            return
        metrics.HTTP_REQUEST_DURATION.labels(
            method=method, route=template, status=str(status)
        ).observe(seconds)
