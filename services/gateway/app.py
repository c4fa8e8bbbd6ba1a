"""FastAPI app: the broker, the projection consumers and the outbox relay live in the app's
lifespan; the routes are in ``api.py``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from contracts.events import (
    CardAnalyzed,
    EpicGenerated,
    RunProgress,
    StoriesGenerated,
    SubtasksGenerated,
)
from contracts.topics import (
    CARDS_ANALYZED,
    EPICS_GENERATED,
    RUNS_PROGRESS,
    STORIES_GENERATED,
    SUBTASKS_GENERATED,
)
from services.gateway.api import router
from services.gateway.problem_handlers import install_problem_handlers
from services.gateway.projection import Projection
from services.gateway.watch import RunWatch
from services.gateway.web import router as web_router
from services.runtime.delivery import HandlerContext
from services.runtime.dlq import export_waiting
from services.runtime.migrate import MigrationHistory
from services.runtime.service import Service, build_service, check_ready, running
from services.runtime.settings import Settings

MIGRATIONS = MigrationHistory("gateway", Path(__file__).parent / "migrations")


def register_projection(service: Service, projection: Projection) -> None:
    async def on_progress(ctx: HandlerContext) -> None:
        await projection.apply_progress(ctx.session, ctx.envelope)

    async def on_card_analyzed(ctx: HandlerContext) -> None:
        await projection.apply_card_analyzed(ctx.session, ctx.envelope)

    async def on_epic(ctx: HandlerContext) -> None:
        await projection.apply_epic_generated(ctx.session, ctx.envelope)

    async def on_stories(ctx: HandlerContext) -> None:
        await projection.apply_stories_generated(ctx.session, ctx.envelope)

    async def on_subtasks(ctx: HandlerContext) -> None:
        await projection.apply_subtasks_generated(ctx.session, ctx.envelope)

    consumers = service.consumers
    consumers.register(RUNS_PROGRESS.name, on_progress, accepted_versions={RunProgress.TYPE: {1}})
    consumers.register(
        CARDS_ANALYZED.name, on_card_analyzed, accepted_versions={CardAnalyzed.TYPE: {1}}
    )
    consumers.register(EPICS_GENERATED.name, on_epic, accepted_versions={EpicGenerated.TYPE: {1}})
    consumers.register(
        STORIES_GENERATED.name, on_stories, accepted_versions={StoriesGenerated.TYPE: {1}}
    )
    consumers.register(
        SUBTASKS_GENERATED.name, on_subtasks, accepted_versions={SubtasksGenerated.TYPE: {1}}
    )
    consumers.add_commit_listener(projection.watch.flush)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings(service_name="gateway")
    service: Service = build_service(settings, [MIGRATIONS])
    watch = RunWatch()
    register_projection(service, Projection(watch))

    async def count_dead_letters(stop: asyncio.Event) -> None:
        # One place exports the waiting dead letters gauge: the gateway, which serves /metrics.
        await export_waiting(service.settings, stop)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with running(service, [count_dead_letters]):
            yield

    app = FastAPI(
        title="cardflow gateway",
        version="1",
        description="Requirement cards in, a backlog of epics, stories and subtasks out; "
        "every run's progress is a pollable object (ETag, long-poll).",
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.settings = settings
    app.state.watch = watch
    app.state.upload_slots = asyncio.Semaphore(settings.upload_max_concurrent)
    install_problem_handlers(app)
    app.include_router(router)
    app.include_router(web_router)  # the web page at / (services/gateway/web)

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
