"""A limit on every request's body, enforced while it is read and before anything else runs
(authentication included): a declared ``Content-Length`` over the limit is answered at
once, and a body that grows past it stops being read. Either way the answer is 413
``request_too_large`` (problem+json); nothing of the request is processed.

A plain ASGI middleware, outermost: FastAPI reads a route's body before its dependencies
(the API key among them) run, so only here is the limit ahead of them.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.gateway.problems import Problem


class BodyTooLarge(HTTPException):
    """Raised from ``receive``: FastAPI lets an HTTPException out of its body parsing as it
    is (any other error there becomes a 400), and the problem handlers answer it."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, _detail(limit))
        self.problem = _too_large(limit)


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await _answer_too_large(send, self.max_bytes, scope.get("path", ""))
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, limited, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length itself
    return None


def _detail(limit: int) -> str:
    return f"The request body is larger than {limit} bytes, the most this gateway reads."


def _too_large(limit: int) -> Problem:
    return Problem("request_too_large", _detail(limit), limit=limit)


async def _answer_too_large(send: Send, limit: int, path: str) -> None:
    body = json.dumps(_too_large(limit).to_body(instance=path)).encode()
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
        # The rest of the body is not read: the connection cannot carry another request.
        (b"connection", b"close"),
    ]
    start: dict[str, Any] = {"type": "http.response.start", "status": 413, "headers": headers}
    await send(start)
    await send({"type": "http.response.body", "body": body})
