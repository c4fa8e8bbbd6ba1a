"""Writes the API makes: projects, cards and runs. Each writes its rows and the events or
commands it publishes (through the gateway's outbox) in one transaction."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from pydantic import Field
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Envelope, new_event_id, root_envelope
from contracts.backlog import Epic, Story
from contracts.documents import DocumentContext
from contracts.events import (
    AnalysedCardRef,
    AnalysisRequested,
    CardSubmitted,
    EpicsRequested,
    RunOptions,
    StoriesRequested,
    StoryInContext,
    SubtasksRequested,
)
from contracts.pipeline import PIPELINE, STAGE_NAMES, AnalysisStatus, RunStatus
from contracts.topics import (
    ANALYSIS_REQUESTED,
    CARDS_SUBMITTED,
    EPICS_REQUESTED,
    STORIES_REQUESTED,
    SUBTASKS_REQUESTED,
)
from services.gateway.inputs import Input
from services.gateway.problems import Problem
from services.gateway.readmodel.items import Announced, announce
from services.gateway.readmodel.tables import cards, epics, idempotency, projects, runs, stories
from services.runtime import metrics
from services.runtime.outbox import enqueue
from services.runtime.tracing import run_span

SOURCE = "gateway"


class CardIn(Input):
    title: str = Field(min_length=1, max_length=500)
    body: str = Field(default="", max_length=200_000)
    external_id: str | None = Field(default=None, max_length=200)


class RunScope(Input):
    card_ids: list[str] | None = None
    epic_ids: list[str] | None = None
    story_ids: list[str] | None = None


class RunCreate(Input):
    stage: str = Field(pattern="^(" + "|".join((*STAGE_NAMES, PIPELINE)) + ")$")
    scope: RunScope = Field(default_factory=RunScope)
    options: RunOptions = Field(default_factory=RunOptions)


def _now() -> datetime:
    return datetime.now(UTC)


async def create_project(session: AsyncSession, tenant: str, name: str, description: str) -> str:
    project_id = new_event_id()
    await session.execute(
        insert(projects).values(
            project_id=project_id,
            tenant_id=tenant,
            name=name,
            description=description,
            card_count=0,
            created_at=_now(),
        )
    )
    return project_id


async def add_cards(
    session: AsyncSession,
    tenant: str,
    project_id: str,
    new_cards: list[CardIn],
    upload_id: str | None = None,
    documents: list[DocumentContext | None] | None = None,
) -> list[str]:
    """Stores the cards and publishes one cards.submitted event each, with what the document
    reader found in each (``documents``, by index) when the cards come from an upload."""
    start = (
        await session.execute(
            select(projects.c.card_count).where(projects.c.project_id == project_id)
        )
    ).scalar_one()
    ids = []
    for offset, card in enumerate(new_cards):
        card_id = new_event_id()
        position = int(start) + offset
        await session.execute(
            insert(cards).values(
                card_id=card_id,
                tenant_id=tenant,
                project_id=project_id,
                title=card.title,
                body=card.body,
                external_id=card.external_id,
                upload_id=upload_id,
                position=position,
                analysis_status=AnalysisStatus.PENDING.value,
                created_at=_now(),
            )
        )
        event = CardSubmitted(
            card_id=card_id,
            project_id=project_id,
            title=card.title,
            body=card.body,
            external_id=card.external_id,
            upload_id=upload_id,
            position=position,
            document=documents[offset] if documents is not None else None,
        )
        await enqueue(session, CARDS_SUBMITTED.name, _root(event, tenant, project_id, card_id))
        ids.append(card_id)
    await session.execute(
        update(projects)
        .where(projects.c.project_id == project_id)
        .values(card_count=projects.c.card_count + len(new_cards))
    )
    return ids


def _root(
    payload: Any, tenant: str, project_id: str, key: str, run_id: str | None = None
) -> Envelope:
    return root_envelope(
        type=payload.TYPE,
        schema_version=1,
        source=SOURCE,
        tenant_id=tenant,
        project_id=project_id,
        run_id=run_id,
        key=key,
        data=payload.model_dump(mode="json"),
    )


def request_hash(body: RunCreate, project_id: str) -> str:
    return hashlib.sha256(
        json.dumps([project_id, body.model_dump(mode="json")], sort_keys=True).encode()
    ).hexdigest()


async def existing_idempotent_run(
    session: AsyncSession, tenant: str, key: str, digest: str
) -> str | None:
    """The run created earlier with this Idempotency-Key; 409 if the request differs."""
    row = (
        await session.execute(
            select(idempotency.c.run_id, idempotency.c.request_hash).where(
                idempotency.c.tenant_id == tenant, idempotency.c.key == key
            )
        )
    ).first()
    if row is None:
        return None
    if row.request_hash != digest:
        raise Problem(
            "idempotency_conflict",
            "This Idempotency-Key was used for a different request; use a new key.",
        )
    return str(row.run_id)


async def create_run(
    session: AsyncSession,
    tenant: str,
    project_id: str,
    body: RunCreate,
    idempotency_key: str | None,
) -> str:
    run_id = new_event_id()
    options = body.options
    stage = body.stage
    metrics.RUNS_STARTED.labels(kind=stage).inc()
    with run_span("run accepted", run_id, **{"cardflow.stage": stage}):
        pass  # the run's first span, at the gateway: where its trace begins
    await session.execute(
        insert(runs).values(
            run_id=run_id,
            tenant_id=tenant,
            project_id=project_id,
            stage=stage,
            status=RunStatus.QUEUED.value,
            options=options.model_dump_json(),
            scope=body.scope.model_dump_json(),
            stages_finished="[]",
            llm_calls=0,
            input_tokens=0,
            output_tokens=0,
            cost_usd=0.0,
            max_running=0,
            created_at=_now(),
            version=1,
            updated_at=_now(),
        )
    )
    if idempotency_key:
        await session.execute(
            insert(idempotency).values(
                tenant_id=tenant,
                key=idempotency_key,
                request_hash=request_hash(body, project_id),
                run_id=run_id,
                created_at=_now(),
            )
        )
    if stage in ("analysis", "pipeline"):
        await _start_analysis(
            session, tenant, project_id, run_id, body, pipeline=stage == "pipeline"
        )
    elif stage == "epics":
        await _start_epics(session, tenant, project_id, run_id, body)
    elif stage == "stories":
        await _start_stories(session, tenant, project_id, run_id, body)
    else:
        await _start_subtasks(session, tenant, project_id, run_id, body)
    return run_id


def _scope_problem(detail: str) -> Problem:
    return Problem("input_invalid", detail)


async def _project_rows(
    session: AsyncSession, table: Any, project_id: str, key: str, wanted: list[str] | None
) -> list[Any]:
    statement = select(table).where(table.c.project_id == project_id).order_by(table.c.position)
    rows = list((await session.execute(statement)).all())
    if wanted is None:
        return rows
    found = {getattr(r, key): r for r in rows}
    unknown = [w for w in wanted if w not in found]
    if unknown:
        raise _scope_problem(f"Not in this project: {', '.join(unknown[:5])}")
    return [found[w] for w in dict.fromkeys(wanted)]


async def _start_analysis(
    session: AsyncSession,
    tenant: str,
    project_id: str,
    run_id: str,
    body: RunCreate,
    *,
    pipeline: bool,
) -> None:
    rows = await _project_rows(session, cards, project_id, "card_id", body.scope.card_ids)
    if not rows:
        raise Problem("no_cards", "The project has no cards to work on; add or upload some first.")
    # Shown from the run's first poll; the stage announces the same items when it opens
    # the run (``announce`` adds each once).
    await announce(session, run_id, "analysis", [Announced(r.card_id, r.title) for r in rows])
    command = AnalysisRequested(
        run_id=run_id,
        project_id=project_id,
        card_ids=[r.card_id for r in rows],
        pipeline=pipeline,
        options=body.options,
    )
    await enqueue(
        session, ANALYSIS_REQUESTED.name, _root(command, tenant, project_id, run_id, run_id)
    )


async def _start_epics(
    session: AsyncSession, tenant: str, project_id: str, run_id: str, body: RunCreate
) -> None:
    rows = await _project_rows(session, cards, project_id, "card_id", body.scope.card_ids)
    analysed = [
        r for r in rows if r.analysis_status == AnalysisStatus.ANALYZED and r.analysis_version
    ]
    if not analysed:
        raise _scope_problem("No analysed cards in scope: run the analysis stage first.")
    command = EpicsRequested(
        run_id=run_id,
        project_id=project_id,
        pipeline=False,
        options=body.options,
        cards=[
            AnalysedCardRef(card_id=r.card_id, analysis_version=r.analysis_version)
            for r in analysed
        ],
    )
    await enqueue(session, EPICS_REQUESTED.name, _root(command, tenant, project_id, run_id, run_id))


async def _start_stories(
    session: AsyncSession, tenant: str, project_id: str, run_id: str, body: RunCreate
) -> None:
    rows = await _project_rows(session, epics, project_id, "epic_id", body.scope.epic_ids)
    if not rows:
        raise _scope_problem("No epics in scope: run the epics stage first.")
    found = [Epic.model_validate_json(r.epic) for r in rows]
    await announce(session, run_id, "stories", [Announced(e.epic_id, e.title) for e in found])
    command = StoriesRequested(
        run_id=run_id,
        project_id=project_id,
        epics=found,
        pipeline=False,
        complete=True,
        options=body.options,
    )
    await enqueue(
        session, STORIES_REQUESTED.name, _root(command, tenant, project_id, run_id, run_id)
    )


async def _start_subtasks(
    session: AsyncSession, tenant: str, project_id: str, run_id: str, body: RunCreate
) -> None:
    rows = await _project_rows(session, stories, project_id, "story_id", body.scope.story_ids)
    if not rows:
        raise _scope_problem("No stories in scope: run the stories stage first.")
    epic_rows = await session.execute(
        select(epics.c.epic_id, epics.c.epic).where(epics.c.project_id == project_id)
    )
    by_id = {r.epic_id: Epic.model_validate_json(r.epic) for r in epic_rows}
    in_context = []
    for row in rows:
        story = Story.model_validate_json(row.story)
        epic = by_id.get(story.epic_id)
        if epic is None:
            continue
        wanted = set(story.requirement_ids)
        in_context.append(
            StoryInContext(
                story=story,
                epic_title=epic.title,
                requirements=[r for r in epic.requirements if r.id in wanted],
            )
        )
    listed = [Announced(s.story.story_id, s.story.title) for s in in_context]
    await announce(session, run_id, "subtasks", listed)
    command = SubtasksRequested(
        run_id=run_id,
        project_id=project_id,
        stories=in_context,
        pipeline=False,
        complete=True,
        options=body.options,
    )
    await enqueue(
        session, SUBTASKS_REQUESTED.name, _root(command, tenant, project_id, run_id, run_id)
    )
