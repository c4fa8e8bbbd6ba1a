"""FastAPI app: the broker and the database live in the app's lifespan."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.runtime.service import Service, build_service, check_ready, prepare
from services.runtime.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings(service_name="gateway")
    service: Service = build_service(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await prepare(service)
        relay_stop = asyncio.Event()
        relay = asyncio.create_task(service.relay.run(relay_stop), name="outbox-relay")
        await service.broker.start()
        try:
            yield
        finally:
            await service.broker.stop()
            relay_stop.set()
            await relay
            await service.engine.dispose()

    app = FastAPI(title="cardflow gateway", version="1", lifespan=lifespan)
    app.state.service = service

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"])
    async def readyz() -> JSONResponse:
        """Readiness: the broker and the database are reachable now."""
        checks = await check_ready(service)
        ready = all(checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "not_ready", "checks": checks},
            status_code=200 if ready else 503,
        )

    @app.get("/metrics", tags=["operations"])
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
