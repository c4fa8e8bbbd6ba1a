"""The quality routes of DESIGN.md's API: ``GET /v1/projects/{id}/quality`` (the report
``quality.build_report`` computes) and ``GET /v1/projects/{id}/questions`` (open questions
with their card and source span). Tenant rules as every route: another tenant's project is
404."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from contracts.api import MAX_LIST_LIMIT
from services.gateway import export, quality
from services.gateway.auth import tenant_of
from services.gateway.readmodel import queries

router = APIRouter(prefix="/v1", tags=["quality"])
Tenant = Annotated[str, Depends(tenant_of)]
Offset = Annotated[int, Query(ge=0, description="Skip this many entries of each list.")]
Limit = Annotated[
    int,
    Query(ge=1, le=MAX_LIST_LIMIT, description="At most this many entries per list."),
]


async def project_report(
    request: Request,
    tenant: str,
    project_id: str,
    *,
    offset: int = 0,
    limit: int | None = quality.DEFAULT_LIST_LIMIT,
) -> quality.QualityReport:
    """The project's quality report (``limit=None``: every list whole, for the exports)."""
    async with request.app.state.service.sessions() as session:
        await queries.project_row(session, tenant, project_id)
        cards = await queries.analysed_cards(session, project_id)
        epics, stories, subtasks = await queries.backlog_rows(session, project_id)
    # Thousands of items take a fraction of a second: off the event loop, so polls go on.
    return await asyncio.to_thread(
        quality.build_report,
        project_id,
        cards,
        epics,
        stories,
        subtasks,
        offset=offset,
        limit=limit,
    )


@router.get("/projects/{project_id}/quality")
async def get_quality(
    project_id: str,
    request: Request,
    tenant: Tenant,
    offset: Offset = 0,
    limit: Limit = quality.DEFAULT_LIST_LIMIT,
) -> Any:
    """Coverage of the author's requirements, untestable stories, duplicates, junk,
    oversized items and open questions. Each list holds at most ``limit`` entries from
    ``offset`` on; ``counts`` gives their full lengths."""
    report = await project_report(request, tenant, project_id, offset=offset, limit=limit)
    return report.model_dump(mode="json")


@router.get("/projects/{project_id}/questions")
async def get_questions(
    project_id: str,
    request: Request,
    tenant: Tenant,
    offset: Offset = 0,
    limit: Limit = MAX_LIST_LIMIT,
) -> Any:
    """The open questions the analyses found, each with its card and source span."""
    async with request.app.state.service.sessions() as session:
        await queries.project_row(session, tenant, project_id)
        cards = await queries.analysed_cards(session, project_id)
    questions = quality.open_questions(cards)
    end = offset + limit
    return {
        "questions": [q.model_dump(mode="json") for q in questions[offset:end]],
        "total": len(questions),
        "next_offset": end if end < len(questions) else None,
    }


async def with_quality(request: Request, tenant: str, backlog: export.Backlog) -> export.Backlog:
    """The backlog with its whole quality report, for the exports."""
    report = await project_report(request, tenant, backlog.project.id, limit=None)
    return dataclasses.replace(backlog, quality=report)
