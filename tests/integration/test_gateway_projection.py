"""The gateway's projection on a real database (SQLite and PostgreSQL): a run is finished only
once the results of its succeeded items are in the read model, whatever order the progress
and result topics are consumed in, and even when both are projected at the same moment."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from contracts import Envelope, root_envelope
from contracts.backlog import Provenance
from contracts.events import (
    EpicGenerated,
    PlannedItem,
    ProgressKind,
    RunProgress,
    Stage,
    SubtasksGenerated,
)
from services.gateway.app import MIGRATIONS
from services.gateway.readmodel import queries
from services.gateway.readmodel.projection import Projection
from services.gateway.readmodel.tables import epics, run_log, runs, subtasks
from services.gateway.readmodel.watch import RunWatch
from services.runtime.db import make_engine, make_sessions
from services.runtime.migrate import migrate
from tests.support.wait import until
from tests.unit.gateway_samples import epic, subtask

pytestmark = pytest.mark.integration

TENANT, PROJECT, RUN, STORY = "t1", "p1", "run-1", "story-1"
PROVENANCE = Provenance(provider="offline", model="offline", prompt_version="v1", offline=True)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(database_url)
    await migrate(engine, MIGRATIONS)
    sessions = make_sessions(engine)
    now = datetime.now(UTC)
    async with sessions.begin() as session:
        await session.execute(
            insert(runs).values(
                run_id=RUN,
                tenant_id=TENANT,
                project_id=PROJECT,
                stage="subtasks",
                status="queued",
                options="{}",
                scope="{}",
                stages_finished="[]",
                llm_calls=0,
                input_tokens=0,
                output_tokens=0,
                cost_usd=0.0,
                max_running=0,
                created_at=now,
                version=1,
                updated_at=now,
            )
        )
    yield engine
    await engine.dispose()


def progress(kind: ProgressKind, stage: Stage = Stage.SUBTASKS, **fields: object) -> Envelope:
    data = RunProgress(run_id=RUN, project_id=PROJECT, stage=stage, kind=kind, **fields)  # type: ignore[arg-type]
    return _envelope(RunProgress.TYPE, RUN, data.model_dump(mode="json"))


def result() -> Envelope:
    event = SubtasksGenerated(
        project_id=PROJECT,
        epic_id="epic-1",
        story_id=STORY,
        subtasks=[subtask("st-1", STORY, 0, "Write the migration")],
        provenance=PROVENANCE,
    )
    return _envelope(SubtasksGenerated.TYPE, STORY, event.model_dump(mode="json"))


def _envelope(type_: str, key: str, data: dict[str, object]) -> Envelope:
    return root_envelope(
        type=type_,
        schema_version=1,
        source="subtasks",
        tenant_id=TENANT,
        project_id=PROJECT,
        run_id=RUN,
        correlation_id=RUN,
        key=key,
        data=data,
    )


async def status(sessions: async_sessionmaker[AsyncSession]) -> str:
    async with sessions() as session:
        return str(
            (await session.execute(select(runs.c.status).where(runs.c.run_id == RUN))).scalar_one()
        )


async def apply(
    projection: Projection, sessions: async_sessionmaker[AsyncSession], *envelopes: Envelope
) -> None:
    for envelope in envelopes:
        async with sessions.begin() as session:
            if envelope.type == RunProgress.TYPE:
                await projection.apply_progress(session, envelope)
            else:
                await projection.apply_subtasks_generated(session, envelope)


def finished_progress() -> list[Envelope]:
    return [
        progress(ProgressKind.ITEMS_PLANNED, items=[PlannedItem(item_id=STORY, title="A story")]),
        progress(ProgressKind.ITEM_STARTED, item_id=STORY, attempt=1),
        progress(ProgressKind.ITEM_SUCCEEDED, item_id=STORY, provenance=PROVENANCE),
        progress(ProgressKind.STAGE_FINISHED),
    ]


async def test_progress_first_the_run_finishes_when_the_result_lands(engine: AsyncEngine) -> None:
    sessions = make_sessions(engine)
    projection = Projection(RunWatch())
    await apply(projection, sessions, *finished_progress())
    assert await status(sessions) == "running", "succeeded while its subtasks are not readable"

    await apply(projection, sessions, result())
    assert await status(sessions) == "succeeded"
    async with sessions() as session:
        listed = (await session.execute(select(subtasks.c.subtask_id))).scalars().all()
    assert listed == ["st-1"]


async def test_a_planning_item_needs_no_result_event_and_is_marked_in_the_run_items(
    engine: AsyncEngine,
) -> None:
    """The epics grouping item: its success is its result (the items it plans are announced
    with it), so the run finishes without a result event for it; its result-bearing sibling
    still waits for its own."""
    sessions = make_sessions(engine)
    projection = Projection(RunWatch())
    planning = PlannedItem(item_id="grouping-1", title="Group the requirements", planning=True)
    await apply(
        projection,
        sessions,
        progress(ProgressKind.ITEMS_PLANNED, items=[planning]),
        progress(ProgressKind.ITEM_STARTED, item_id="grouping-1", attempt=1),
        progress(ProgressKind.ITEM_SUCCEEDED, item_id="grouping-1", provenance=PROVENANCE),
        *finished_progress(),
    )
    assert await status(sessions) == "running", "the story's result has not landed"
    await apply(projection, sessions, result())
    assert await status(sessions) == "succeeded"
    async with sessions() as session:
        items = await queries.run_items_of(session, RUN)
    assert [(i["item_id"], i["planning"]) for i in items] == [
        ("grouping-1", True),
        (STORY, False),
    ]


async def test_result_first_the_run_finishes_with_its_last_progress_event(
    engine: AsyncEngine,
) -> None:
    sessions = make_sessions(engine)
    projection = Projection(RunWatch())
    await apply(projection, sessions, result())
    assert await status(sessions) == "queued"
    await apply(projection, sessions, *finished_progress())
    assert await status(sessions) == "succeeded"


async def test_the_last_item_and_its_result_projected_at_once_still_finish_the_pipeline(
    engine: AsyncEngine,
) -> None:
    """Two consumers, two transactions: each must see the other's write, or both compute
    "running" from their own snapshot and, with no later event for a streamed stage to
    recompute it, the run never finishes."""
    sessions = make_sessions(engine)
    async with sessions.begin() as session:
        await session.execute(update(runs).where(runs.c.run_id == RUN).values(stage="pipeline"))
    projection = Projection(RunWatch())
    planned, started, succeeded, _ = finished_progress()
    upstream_done = [
        progress(ProgressKind.STAGE_FINISHED, stage=stage)
        for stage in (Stage.ANALYSIS, Stage.EPICS, Stage.STORIES)
    ]
    await apply(projection, sessions, *upstream_done, planned, started)

    async with sessions.begin() as first:
        await projection.apply_progress(first, succeeded)
        second = asyncio.create_task(apply(projection, sessions, result()))
        if engine.dialect.name == "postgresql":
            await until(
                lambda: _waiting_on_a_lock(engine),
                timeout=10,
                what="the result's transaction to wait on the run's row",
            )
        else:
            await asyncio.sleep(0)  # SQLite: writers are serialised by BEGIN IMMEDIATE
    await asyncio.wait_for(second, 30)
    assert await status(sessions) == "succeeded"


async def _waiting_on_a_lock(engine: AsyncEngine) -> bool:
    async with engine.connect() as conn:
        waiting = await conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
        return int(waiting.scalar_one()) > 0


async def test_a_stage_finished_after_the_run_is_done_changes_neither_version_nor_log(
    engine: AsyncEngine,
) -> None:
    """A pipeline's streaming stage reports stage_finished once its closing command reached
    it, possibly after the run was seen done: a client's ETag must stay valid."""
    sessions = make_sessions(engine)
    projection = Projection(RunWatch())
    await apply(projection, sessions, *finished_progress(), result())
    assert await status(sessions) == "succeeded"

    async def version_and_log() -> tuple[int, int]:
        async with sessions() as session:
            version = (
                await session.execute(select(runs.c.version).where(runs.c.run_id == RUN))
            ).scalar_one()
            lines = (await session.execute(select(func.count()).select_from(run_log))).scalar_one()
        return int(version), int(lines)

    before = await version_and_log()
    await apply(projection, sessions, progress(ProgressKind.STAGE_FINISHED))
    assert await version_and_log() == before
    assert await status(sessions) == "succeeded"


def _epic_event(epic_id: str, title: str, supersedes: list[str], tenant: str = TENANT) -> Envelope:
    event = EpicGenerated(
        epic=epic(epic_id, 0, title, project_id=PROJECT),
        provenance=PROVENANCE,
        supersedes=supersedes,
    )
    envelope = _envelope(EpicGenerated.TYPE, epic_id, event.model_dump(mode="json"))
    return envelope.model_copy(update={"tenant_id": tenant})


async def test_a_new_grouping_supersedes_the_epics_it_replaces_and_hides_them(
    engine: AsyncEngine,
) -> None:
    sessions = make_sessions(engine)
    projection = Projection(RunWatch())
    for envelope in (
        _epic_event("e-old", "Old grouping", []),
        _epic_event("e-new", "New", ["e-old"]),
    ):
        async with sessions.begin() as session:
            await projection.apply_epic_generated(session, envelope)
    async with sessions() as session:
        listed, _, _ = await queries.backlog_rows(session, PROJECT)
        kept = (await session.execute(select(epics.c.epic_id, epics.c.superseded_by))).all()
        counted = await queries.kpis(session, PROJECT)
    assert [e.epic_id for e in listed] == ["e-new"]
    assert sorted(kept) == [("e-new", None), ("e-old", "e-new")]  # kept, marked, not deleted
    assert counted["epics"] == 1

    # Regenerated by a later grouping, the old epic is current again.
    async with sessions.begin() as session:
        await projection.apply_epic_generated(session, _epic_event("e-old", "Back", ["e-new"]))
    async with sessions() as session:
        listed, _, _ = await queries.backlog_rows(session, PROJECT)
    assert [e.epic_id for e in listed] == ["e-old"]


async def test_an_event_cannot_supersede_another_tenants_epic(engine: AsyncEngine) -> None:
    sessions = make_sessions(engine)
    projection = Projection(RunWatch())
    async with sessions.begin() as session:
        await projection.apply_epic_generated(session, _epic_event("e-theirs", "Theirs", []))
    async with sessions.begin() as session:
        await projection.apply_epic_generated(
            session, _epic_event("e-mine", "Mine", ["e-theirs"], tenant="t2")
        )
    async with sessions() as session:
        marked = (
            await session.execute(
                select(epics.c.superseded_by).where(epics.c.epic_id == "e-theirs")
            )
        ).scalar_one()
    assert marked is None
