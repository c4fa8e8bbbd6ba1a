"""Answering ``GET /v1/runs/{run_id}`` (with ``?wait=`` a long-poll) from the run cache.

One function for both ways a poll arrives: the FastAPI route and the ``run_polls`` fast path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from fastapi import Request, Response

from services.gateway.readmodel import run_object
from services.gateway.readmodel.run_cache import RunCache
from services.gateway.readmodel.run_object import RunSnapshot

MAX_WAIT_S = 30.0


def cache_of(request: Request) -> RunCache:
    cache: RunCache = request.app.state.runs
    return cache


async def answer(
    request: Request, tenant: str, run_id: str, wait: float, if_none_match: str | None
) -> Response:
    runs = cache_of(request)
    snapshot = await runs.current(tenant, run_id)
    if wait and (not if_none_match or run_object.matches(if_none_match, snapshot.version)):
        snapshot = await _until_changed_or_gone(
            request, runs.next_version(tenant, run_id, snapshot.version, wait), snapshot
        )
    answered = runs.answer(snapshot)
    headers = {"ETag": answered.etag, "Cache-Control": "no-store"}
    if run_object.matches(if_none_match, answered.version):
        return Response(status_code=304, headers=headers)
    return Response(answered.body, media_type="application/json", headers=headers)


async def _until_changed_or_gone(
    request: Request, waiting: Coroutine[Any, Any, RunSnapshot], held: RunSnapshot
) -> RunSnapshot:
    """The next version, unless the client hangs up first: its slot is freed at once."""
    change = asyncio.ensure_future(waiting)
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait((change, gone), return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not change.done():
            change.cancel()
    return change.result() if change.done() and not change.cancelled() else held


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass
