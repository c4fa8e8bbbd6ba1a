"""FastAPI app: the broker, the projection consumers and the outbox relay live in the app's
lifespan; the routes are in ``api.py``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.routing import BaseRoute

from contracts import Envelope
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
from services.gateway.body_limit import BodyLimit
from services.gateway.key_cache import KeyCache
from services.gateway.problem_handlers import install_problem_handlers
from services.gateway.quality_api import router as quality_router
from services.gateway.readmodel import queries
from services.gateway.readmodel.projection import Projection
from services.gateway.readmodel.run_cache import RunCache, WaitBounds
from services.gateway.readmodel.run_object import RunSnapshot
from services.gateway.readmodel.watch import RunWatch
from services.gateway.request_metrics import RequestMetrics
from services.gateway.run_polls import RunPolls
from services.gateway.web import router as web_router
from services.runtime import metrics
from services.runtime.db import snapshot_read
from services.runtime.delivery import Handler, HandlerContext
from services.runtime.dlq.kafka import export_waiting
from services.runtime.lag import export_lag
from services.runtime.migrate import MigrationHistory
from services.runtime.service import Service, build_service, check_ready, running
from services.runtime.settings import Settings, settings_for

MIGRATIONS = MigrationHistory("gateway", Path(__file__).parent / "migrations")
Apply = Callable[[AsyncSession, Envelope], Awaitable[None]]


def register_projection(service: Service, projection: Projection) -> None:
    def projecting(topic: str, apply: Apply) -> Handler:
        async def handle(ctx: HandlerContext) -> None:
            await apply(ctx.session, ctx.envelope)
            observe_staleness(topic, ctx.envelope.time)

        return handle

    for topic, apply, payload in (
        (RUNS_PROGRESS.name, projection.apply_progress, RunProgress),
        (CARDS_ANALYZED.name, projection.apply_card_analyzed, CardAnalyzed),
        (EPICS_GENERATED.name, projection.apply_epic_generated, EpicGenerated),
        (STORIES_GENERATED.name, projection.apply_stories_generated, StoriesGenerated),
        (SUBTASKS_GENERATED.name, projection.apply_subtasks_generated, SubtasksGenerated),
    ):
        service.consumers.register(
            topic, projecting(topic, apply), accepted_versions={payload.TYPE: {1}}
        )
    service.consumers.add_commit_listener(projection.watch.flush)


def observe_staleness(topic: str, created: datetime) -> None:
    """How far behind the read model is: the event's age when it was projected."""
    now = datetime.now(UTC)
    created = created if created.tzinfo else created.replace(tzinfo=UTC)
    metrics.READ_MODEL_STALENESS.labels(topic=topic).observe(
        max((now - created).total_seconds(), 0.0)
    )
    metrics.READ_MODEL_LAST_PROJECTED.labels(topic=topic).set(now.timestamp())


def run_cache(service: Service, settings: Settings) -> RunCache:
    """The runs this replica's clients poll, read from its database."""

    async def load(tenant: str, run_id: str) -> RunSnapshot:
        async with snapshot_read(service.sessions) as session:
            return await queries.run_snapshot(session, tenant, run_id)

    async def read_versions(run_ids: Sequence[str]) -> dict[str, int]:
        async with snapshot_read(service.sessions) as session:
            return await queries.run_versions(session, run_ids)

    bounds = WaitBounds(settings.poll_max_waiters, settings.poll_max_waiters_per_tenant)
    return RunCache(load, read_versions, bounds)


def _route(routes: Sequence[BaseRoute], path: str, method: str) -> BaseRoute:
    return next(
        r
        for r in routes
        if getattr(r, "path", None) == path and method in (getattr(r, "methods", None) or ())
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or settings_for("gateway")
    service: Service = build_service(settings, [MIGRATIONS])
    runs = run_cache(service, settings)
    watch = RunWatch()
    watch.subscribe(runs.invalidate)
    register_projection(service, Projection(watch))

    async def count_dead_letters(stop: asyncio.Event) -> None:
        # One place exports the waiting dead letters gauge: the gateway, which serves /metrics.
        await export_waiting(service.settings, stop)

    async def measure_lag(stop: asyncio.Event) -> None:
        await export_lag(service.settings, stop)

    async def sweep_runs(stop: asyncio.Event) -> None:
        await runs.sweep_forever(stop, settings.poll_sweep_interval_s)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with running(service, [count_dead_letters, measure_lag, sweep_runs]):
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
    app.state.runs = runs
    app.state.key_cache = KeyCache(settings.api_key_cache_s)
    app.state.upload_slots = asyncio.Semaphore(settings.upload_max_concurrent)
    install_problem_handlers(app)
    app.include_router(router)
    app.include_router(quality_router)  # /v1/projects/{id}/quality and /questions
    app.include_router(web_router)  # the web page at / (services/gateway/web)
    # Innermost first: polls are answered inside the request metrics, which they feed.
    app.add_middleware(RunPolls, route=_route(router.routes, "/v1/runs/{run_id}", "GET"))
    app.add_middleware(RequestMetrics)
    # Added last, so outermost: the body is bounded before anything else reads it.
    app.add_middleware(BodyLimit, max_bytes=settings.request_body_limit())

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

    # A server span per request (recorded only once tracing is configured, at start); probes,
    # scrapes and polls would be noise. Per-message ASGI receive/send spans too.
    FastAPIInstrumentor.instrument_app(
        app,
        excluded_urls="/healthz,/readyz,/metrics,/v1/runs/[^/]+$",  # the last: polls of a run
        exclude_spans=["receive", "send"],
    )
    return app
