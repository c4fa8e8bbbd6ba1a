"""The HTTP API of DESIGN.md (v1): thin routes over queries and commands."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response, UploadFile
from fastapi.responses import PlainTextResponse
from pydantic import Field

from contracts import new_event_id
from contracts.pipeline import ACTIVE_RUN_STATUSES
from services.gateway import commands, controls, export, ingest, quality_api, run_reads
from services.gateway.auth import tenant_of
from services.gateway.inputs import Input, storable_file_name
from services.gateway.problems import Problem
from services.gateway.readmodel import queries, run_object
from services.gateway.readmodel.tables import uploads as uploads_table

router = APIRouter(prefix="/v1")
Tenant = Annotated[str, Depends(tenant_of)]
MAX_WAIT_S = run_reads.MAX_WAIT_S


class ProjectIn(Input):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)


class CardsIn(Input):
    cards: list[commands.CardIn] = Field(min_length=1)


def _sessions(request: Request) -> Any:
    return request.app.state.service.sessions


def _committed(request: Request) -> None:
    request.app.state.service.relay.notify()


@router.post("/projects", status_code=201)
async def create_project(
    body: ProjectIn, request: Request, response: Response, tenant: Tenant
) -> Any:
    async with _sessions(request).begin() as session:
        project_id = await commands.create_project(session, tenant, body.name, body.description)
        project = await queries.project_object(
            session, await queries.project_row(session, tenant, project_id)
        )
    response.headers["Location"] = f"/v1/projects/{project_id}"
    return project


@router.get("/projects")
async def list_projects(request: Request, tenant: Tenant) -> Any:
    async with _sessions(request)() as session:
        return {"projects": await queries.list_projects(session, tenant)}


@router.get("/projects/{project_id}")
async def get_project(project_id: str, request: Request, tenant: Tenant) -> Any:
    async with _sessions(request)() as session:
        return await queries.project_object(
            session, await queries.project_row(session, tenant, project_id)
        )


def _check_card_limits(request: Request, cards: list[commands.CardIn]) -> None:
    settings = request.app.state.settings
    if len(cards) > settings.upload_max_cards:
        raise Problem(
            "too_many_cards",
            f"At most {settings.upload_max_cards} cards per request.",
            limit=settings.upload_max_cards,
        )
    for position, card in enumerate(cards):
        if len(card.body) > settings.upload_max_card_chars:
            raise Problem(
                "card_too_long",
                f"Card {position} ({card.title[:60]!r}) has {len(card.body)} characters; "
                f"the limit is {settings.upload_max_card_chars}.",
                limit=settings.upload_max_card_chars,
                position=position,
            )


@router.post("/projects/{project_id}/cards", status_code=202)
async def add_cards(project_id: str, body: CardsIn, request: Request, tenant: Tenant) -> Any:
    _check_card_limits(request, body.cards)
    async with _sessions(request).begin() as session:
        await queries.project_row(session, tenant, project_id)
        ids = await commands.add_cards(session, tenant, project_id, body.cards)
    _committed(request)
    return {"card_ids": ids}


@router.post("/projects/{project_id}/uploads", status_code=202)
async def upload(project_id: str, file: UploadFile, request: Request, tenant: Tenant) -> Any:
    settings = request.app.state.settings
    limits = ingest.UploadLimits.from_settings(settings)
    async with _sessions(request)() as session:
        await queries.project_row(session, tenant, project_id)
    file_name = storable_file_name(file.filename)
    async with request.app.state.upload_slots:
        data = await _read_limited(file, limits)
        # Splitting is CPU work on up to 5 MB: off the event loop, so polls stay answered.
        drafts = await asyncio.to_thread(
            ingest.split_upload, file_name or None, file.content_type, data, limits
        )
    upload_id = new_event_id()
    new_cards = [
        commands.CardIn(title=d.title[:500], body=d.body, external_id=d.external_id) for d in drafts
    ]
    async with _sessions(request).begin() as session:
        await session.execute(
            uploads_table.insert().values(
                upload_id=upload_id,
                tenant_id=tenant,
                project_id=project_id,
                file_name=file_name[:300],
                size_bytes=len(data),
                card_count=len(new_cards),
                created_at=datetime.now(UTC),
            )
        )
        ids = await commands.add_cards(
            session,
            tenant,
            project_id,
            new_cards,
            upload_id=upload_id,
            documents=[d.document for d in drafts],
        )
    _committed(request)
    return {"upload_id": upload_id, "cards": ids}


async def _read_limited(file: UploadFile, limits: ingest.UploadLimits) -> bytes:
    chunks, size = [], 0
    while chunk := await file.read(64 * 1024):
        size += len(chunk)
        ingest.check_file_size(size, limits)
        chunks.append(chunk)
    return b"".join(chunks)


@router.get("/projects/{project_id}/cards")
async def list_cards(project_id: str, request: Request, tenant: Tenant) -> Any:
    async with _sessions(request)() as session:
        await queries.project_row(session, tenant, project_id)
        return {"cards": await queries.list_cards(session, project_id)}


@router.post("/projects/{project_id}/runs", status_code=202)
async def create_run(
    project_id: str,
    body: commands.RunCreate,
    request: Request,
    response: Response,
    tenant: Tenant,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> Any:
    async with _sessions(request).begin() as session:
        await queries.project_row(session, tenant, project_id)
        run_id = None
        if idempotency_key:
            digest = commands.request_hash(body, project_id)
            run_id = await commands.existing_idempotent_run(
                session, tenant, idempotency_key, digest
            )
        if run_id is None:
            run_id = await commands.create_run(session, tenant, project_id, body, idempotency_key)
        run = await queries.run_object(session, await queries.run_row(session, tenant, run_id))
    _committed(request)
    response.headers["Location"] = f"/v1/runs/{run_id}"
    response.headers["ETag"] = _etag(run)
    return run


@router.get("/projects/{project_id}/runs")
async def list_runs(project_id: str, request: Request, tenant: Tenant) -> Any:
    async with _sessions(request)() as session:
        await queries.project_row(session, tenant, project_id)
        return {"runs": await queries.list_runs(session, project_id)}


def _etag(run: dict[str, Any]) -> str:
    return run_object.etag_of(run["version"], clock_moves=run["finished_at"] is None)


@router.get("/runs/{run_id}")
async def get_run(
    run_id: str,
    request: Request,
    tenant: Tenant,
    wait: Annotated[float, Query(ge=0, le=MAX_WAIT_S)] = 0,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """The run; with ``wait`` it answers when the run changes (or after ``wait`` seconds).

    Served from this replica's copy of the run: one read of the database per version of the
    run, however many clients poll it. (Valid requests are answered by ``run_polls`` before
    they reach this route; the route documents the operation and answers the rest.)
    """
    return await run_reads.answer(request, tenant, run_id, wait, if_none_match)


def _gate(request: Request) -> Any:
    return request.app.state.service.fleet.gate


@router.post("/runs/{run_id}/cancel", status_code=202)
async def cancel_run(run_id: str, request: Request, response: Response, tenant: Tenant) -> Any:
    """Stops the run: no LLM call of it starts once this answers; finished items stay."""
    sessions = _sessions(request)
    async with sessions() as session:
        controls.check_cancel(await queries.run_row(session, tenant, run_id))
    # The fleet gate first: every replica of every service checks it before each LLM call.
    await _gate(request).cancel_run(run_id)
    async with sessions.begin() as session:
        row = await queries.run_row(session, tenant, run_id)
        if row.status in ACTIVE_RUN_STATUSES:
            await controls.cancel(session, row)
        run = await queries.run_object(session, await queries.run_row(session, tenant, run_id))
    _committed(request)
    run_reads.cache_of(request).invalidate(run_id)
    response.headers["ETag"] = _etag(run)
    return run


@router.post("/runs/{run_id}/retry", status_code=202)
async def retry_run(run_id: str, request: Request, response: Response, tenant: Tenant) -> Any:
    """Reruns only the run's failed and cancelled items, in the same run."""
    sessions = _sessions(request)
    async with sessions() as session:
        row = await queries.run_row(session, tenant, run_id)
        controls.check_retry(row, (await queries.run_object(session, row))["counts"])
    await _gate(request).reopen_run(run_id)
    async with sessions.begin() as session:
        row = await queries.run_row(session, tenant, run_id)
        controls.check_retry(row, (await queries.run_object(session, row))["counts"])
        await controls.retry(session, row)
        run = await queries.run_object(session, await queries.run_row(session, tenant, run_id))
    _committed(request)
    run_reads.cache_of(request).invalidate(run_id)
    response.headers["ETag"] = _etag(run)
    return run


@router.get("/runs/{run_id}/items")
async def run_items(run_id: str, request: Request, tenant: Tenant) -> Any:
    async with _sessions(request)() as session:
        await queries.run_row(session, tenant, run_id)
        return {"items": await queries.run_items_of(session, run_id)}


@router.get("/runs/{run_id}/log")
async def run_log(run_id: str, request: Request, tenant: Tenant) -> Any:
    async with _sessions(request)() as session:
        await queries.run_row(session, tenant, run_id)
        return {"log": await queries.run_log_of(session, run_id)}


async def _backlog(request: Request, tenant: str, project_id: str) -> export.Backlog:
    async with _sessions(request)() as session:
        row = await queries.project_row(session, tenant, project_id)
        epics, stories, subtasks = await queries.backlog_rows(session, project_id)
    return export.build_backlog(
        export.ProjectRef(row.project_id, row.name), epics, stories, subtasks
    )


@router.get("/projects/{project_id}/epics")
async def list_epics(project_id: str, request: Request, tenant: Tenant) -> Any:
    backlog = await _backlog(request, tenant, project_id)
    return {
        "epics": [
            node.epic.model_dump(mode="json") | {"story_count": len(node.stories)}
            for node in backlog.epics
        ]
    }


@router.get("/projects/{project_id}/stories")
async def list_stories(project_id: str, request: Request, tenant: Tenant) -> Any:
    backlog = await _backlog(request, tenant, project_id)
    return {
        "epics": [
            {
                "epic": node.epic.model_dump(mode="json"),
                "stories": [child.story.model_dump(mode="json") for child in node.stories],
            }
            for node in backlog.epics
        ]
    }


@router.get("/projects/{project_id}/subtasks")
async def list_subtasks(project_id: str, request: Request, tenant: Tenant) -> Any:
    backlog = await _backlog(request, tenant, project_id)
    return {"epics": export.backlog_to_dict(backlog)["epics"]}


@router.get("/projects/{project_id}/export")
async def export_backlog(
    project_id: str,
    request: Request,
    tenant: Tenant,
    format: Annotated[export.ExportFormat, Query()] = export.ExportFormat.JSON,
) -> Response:
    backlog = await quality_api.with_quality(
        request, tenant, await _backlog(request, tenant, project_id)
    )
    if format is export.ExportFormat.JSON:
        text = export.render_json(backlog)
    elif format is export.ExportFormat.CSV:
        text = export.render_csv(backlog)
    else:
        text = export.render_markdown(backlog)
    extension = {"json": "json", "csv": "csv", "markdown": "md"}[format.value]
    return PlainTextResponse(
        text,
        media_type=export.MEDIA_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="backlog-{project_id}.{extension}"'},
    )
