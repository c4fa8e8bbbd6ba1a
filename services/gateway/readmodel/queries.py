"""Reads of the read model for the API, always scoped to the caller's tenant."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.backlog import CardAnalysis, Epic, Story, Subtask
from contracts.pipeline import AnalysisStatus, ItemState
from services.gateway import quality
from services.gateway.problems import not_found
from services.gateway.readmodel import run_object as run_object_module
from services.gateway.readmodel import runview
from services.gateway.readmodel.facts import load_facts
from services.gateway.readmodel.run_object import RunSnapshot, iso
from services.gateway.readmodel.tables import (
    cards,
    epics,
    projects,
    run_items,
    run_log,
    runs,
    stories,
    subtasks,
)


async def project_row(session: AsyncSession, tenant: str, project_id: str) -> Any:
    row = (
        await session.execute(
            select(projects).where(
                projects.c.project_id == project_id, projects.c.tenant_id == tenant
            )
        )
    ).first()
    if row is None:
        raise not_found("project", project_id)
    return row


async def kpis(session: AsyncSession, project_id: str) -> dict[str, Any]:
    async def count(table: Any, *where: Any) -> int:
        statement = (
            select(func.count()).select_from(table).where(table.c.project_id == project_id, *where)
        )
        return int((await session.execute(statement)).scalar_one())

    hidden = superseded_epic_ids(project_id)
    return {
        "cards": await count(cards),
        "cards_analyzed": await count(cards, cards.c.analysis_status == AnalysisStatus.ANALYZED),
        "epics": await count(epics, epics.c.superseded_by.is_(None)),
        "stories": await count(stories, stories.c.epic_id.not_in(hidden)),
        "subtasks": await count(subtasks, subtasks.c.epic_id.not_in(hidden)),
    } | await coverage_kpis(session, project_id)


async def coverage_kpis(session: AsyncSession, project_id: str) -> dict[str, Any]:
    """The author's requirements, those a story that is not junk cites, and their share:
    counted by ``quality.coverage``, as the quality report counts them."""
    analyses = await session.execute(
        select(cards.c.card_id, cards.c.analysis).where(
            cards.c.project_id == project_id,
            cards.c.analysis_status == AnalysisStatus.ANALYZED,
            cards.c.analysis.is_not(None),
        )
    )
    # Plain JSON, not models: the KPIs are read on every poll of the project.
    requirements = [
        quality.RequirementRow(str(r["id"]), row.card_id)
        for row in analyses
        for r in json.loads(row.analysis).get("requirements", ())
    ]
    story_rows = await session.execute(
        select(stories.c.story).where(
            stories.c.project_id == project_id,
            stories.c.epic_id.not_in(superseded_epic_ids(project_id)),
        )
    )
    citations = []
    for (text,) in story_rows:
        story = json.loads(text)
        citations.append(
            quality.Citation(story["story_id"], story["title"], story.get("requirement_ids", []))
        )
    counted, _, _ = quality.coverage(requirements, citations)
    return {
        "requirements": counted.total,
        "requirements_covered": counted.covered,
        "coverage": counted.share,
    }


async def analysed_cards(session: AsyncSession, project_id: str) -> list[quality.AnalysedCard]:
    """The project's analysed cards with their analyses, in card order."""
    rows = await session.execute(
        select(cards.c.card_id, cards.c.title, cards.c.analysis)
        .where(
            cards.c.project_id == project_id,
            cards.c.analysis_status == AnalysisStatus.ANALYZED,
            cards.c.analysis.is_not(None),
        )
        .order_by(cards.c.position)
    )
    return [
        quality.AnalysedCard(r.card_id, r.title, CardAnalysis.model_validate_json(r.analysis))
        for r in rows
    ]


def superseded_epic_ids(project_id: str) -> Any:
    """The project's epics a later grouping replaced: they, and what hangs under them, are
    kept but left out of the backlog."""
    return select(epics.c.epic_id).where(
        epics.c.project_id == project_id, epics.c.superseded_by.is_not(None)
    )


async def project_object(session: AsyncSession, row: Any) -> dict[str, Any]:
    active = await session.execute(
        select(runs.c.run_id, runs.c.stage, runs.c.status)
        .where(runs.c.project_id == row.project_id, runs.c.status.in_(runview.ACTIVE_STATUSES))
        .order_by(runs.c.created_at.desc())
    )
    return {
        "id": row.project_id,
        "name": row.name,
        "description": row.description,
        "created_at": iso(row.created_at),
        "kpis": await kpis(session, row.project_id),
        "active_runs": [{"id": r.run_id, "stage": r.stage, "status": r.status} for r in active],
    }


async def list_projects(session: AsyncSession, tenant: str) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(projects)
        .where(projects.c.tenant_id == tenant)
        .order_by(projects.c.created_at.desc())
    )
    return [await project_object(session, row) for row in rows.all()]


def card_object(row: Any) -> dict[str, Any]:
    return {
        "id": row.card_id,
        "title": row.title,
        "body": row.body,
        "external_id": row.external_id,
        "upload_id": row.upload_id,
        "position": row.position,
        "analysis_status": row.analysis_status,
        "analysis": json.loads(row.analysis) if row.analysis else None,
        "provenance": json.loads(row.analysis_provenance) if row.analysis_provenance else None,
        "error": row.analysis_error,
    }


async def list_cards(session: AsyncSession, project_id: str) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(cards).where(cards.c.project_id == project_id).order_by(cards.c.position)
    )
    return [card_object(r) for r in rows]


async def run_row(session: AsyncSession, tenant: str, run_id: str) -> Any:
    row = (
        await session.execute(
            select(runs).where(runs.c.run_id == run_id, runs.c.tenant_id == tenant)
        )
    ).first()
    if row is None:
        raise not_found("run", run_id)
    return row


async def run_snapshot(session: AsyncSession, tenant: str, run_id: str) -> RunSnapshot:
    """The run and its items in ``session``: one snapshot when the session reads one
    (``consistent_read``), so the version and the body agree."""
    row = await run_row(session, tenant, run_id)
    return run_object_module.snapshot(row, await load_facts(session, row))


async def run_object(session: AsyncSession, row: Any) -> dict[str, Any]:
    """DESIGN.md's run object, read in ``session``."""
    snapshot = run_object_module.snapshot(row, await load_facts(session, row))
    return run_object_module.render(snapshot, datetime.now(UTC))


async def list_runs(session: AsyncSession, project_id: str) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(runs).where(runs.c.project_id == project_id).order_by(runs.c.created_at.desc())
    )
    return [await run_object(session, r) for r in rows.all()]


async def run_items_of(session: AsyncSession, run_id: str) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(run_items).where(run_items.c.run_id == run_id).order_by(run_items.c.seq)
    )
    return [
        {
            "item_id": r.item_id,
            "stage": r.stage,
            "title": r.title,
            "planning": bool(r.planning),
            "state": ItemState.PENDING.value if r.state == ItemState.WAITING else r.state,
            "attempts": r.attempts,
            "tokens_so_far": r.tokens_so_far,
            "started_at": iso(r.started_at),
            "finished_at": iso(r.finished_at),
            "error": {"code": r.error_code, "message": r.error_message} if r.error_code else None,
            "provenance": json.loads(r.provenance) if r.provenance else None,
        }
        for r in rows
    ]


async def run_log_of(session: AsyncSession, run_id: str) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(run_log).where(run_log.c.run_id == run_id).order_by(run_log.c.id)
    )
    return [
        {
            "time": iso(r.time),
            "level": r.level,
            "service": r.service,
            "stage": r.stage,
            "item": r.item_id,
            "message": r.message,
        }
        for r in rows
    ]


async def backlog_rows(
    session: AsyncSession, project_id: str
) -> tuple[list[Epic], list[Story], list[Subtask]]:
    """The project's epics, stories and subtasks, flat (``export.build_backlog`` nests them)."""

    async def column(table: Any, name: str) -> list[str]:
        rows = await session.execute(
            select(table.c[name])
            .where(
                table.c.project_id == project_id,
                table.c.epic_id.not_in(superseded_epic_ids(project_id)),
            )
            .order_by(table.c.position)
        )
        return list(rows.scalars())

    return (
        [Epic.model_validate_json(r) for r in await column(epics, "epic")],
        [Story.model_validate_json(r) for r in await column(stories, "story")],
        [Subtask.model_validate_json(r) for r in await column(subtasks, "subtask")],
    )


async def run_versions(session: AsyncSession, run_ids: Sequence[str]) -> dict[str, int]:
    rows = await session.execute(
        select(runs.c.run_id, runs.c.version).where(runs.c.run_id.in_(run_ids))
    )
    return {row.run_id: int(row.version) for row in rows}
