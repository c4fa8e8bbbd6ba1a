"""Projects the stages' domain events (a card analysed, an epic, a story set, a subtask set)
into the backlog's tables, and records that an item's result has landed: a run is finished
only once everything it made can be read."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Envelope
from contracts.events import CardAnalyzed, EpicGenerated, StoriesGenerated, SubtasksGenerated
from contracts.pipeline import AnalysisStatus
from services.gateway.readmodel.facts import now
from services.gateway.readmodel.runs import touch_run
from services.gateway.readmodel.tables import cards, epics, item_results, runs, stories, subtasks


async def _result_landed(
    session: AsyncSession,
    envelope: Envelope,
    stage: str,
    item_id: str,
    on_changed: Callable[[str], None],
) -> None:
    """Records that the result of ``item_id`` (its natural key: card, epic, story id) is
    projected; the run it belongs to may finish now."""
    if envelope.run_id is None:
        return
    known = (
        await session.execute(
            select(runs.c.run_id).where(
                runs.c.run_id == envelope.run_id, runs.c.tenant_id == envelope.tenant_id
            )
        )
    ).first()
    if known is None:
        return
    landed = await session.execute(
        select(item_results.c.item_id).where(
            item_results.c.run_id == envelope.run_id,
            item_results.c.stage == stage,
            item_results.c.item_id == item_id,
        )
    )
    if landed.first() is None:
        await session.execute(
            insert(item_results).values(
                run_id=envelope.run_id,
                stage=stage,
                item_id=item_id,
                event_id=envelope.id,
                landed_at=now(),
            )
        )
    await touch_run(session, envelope.run_id)
    on_changed(envelope.run_id)


async def project_card_analyzed(
    session: AsyncSession, envelope: Envelope, on_changed: Callable[[str], None]
) -> None:
    event = CardAnalyzed.model_validate(envelope.data)
    await session.execute(
        update(cards)
        .where(cards.c.card_id == event.card_id, cards.c.tenant_id == envelope.tenant_id)
        .values(
            analysis_status=AnalysisStatus.ANALYZED.value,
            analysis=event.analysis.model_dump_json(),
            analysis_version=event.analysis_version,
            analysis_provenance=event.provenance.model_dump_json(),
            analysis_error=None,
        )
    )
    await _result_landed(session, envelope, "analysis", event.card_id, on_changed)


async def project_epic_generated(
    session: AsyncSession, envelope: Envelope, on_changed: Callable[[str], None]
) -> None:
    event = EpicGenerated.model_validate(envelope.data)
    epic = event.epic
    await _upsert(
        session,
        epics,
        "epic_id",
        {
            "epic_id": epic.epic_id,
            "tenant_id": envelope.tenant_id,
            "project_id": epic.project_id,
            "position": epic.order,
            "epic": epic.model_dump_json(),
            "provenance": event.provenance.model_dump_json(),
            "updated_at": now(),
            "superseded_by": None,
        },
    )
    if event.supersedes:
        # Only the envelope's own tenant and project: an event cannot hide another's epics.
        await session.execute(
            update(epics)
            .where(
                epics.c.epic_id.in_([e for e in event.supersedes if e != epic.epic_id]),
                epics.c.tenant_id == envelope.tenant_id,
                epics.c.project_id == epic.project_id,
            )
            .values(superseded_by=epic.epic_id, updated_at=now())
        )
    await _result_landed(session, envelope, "epics", epic.epic_id, on_changed)


async def project_stories_generated(
    session: AsyncSession, envelope: Envelope, on_changed: Callable[[str], None]
) -> None:
    event = StoriesGenerated.model_validate(envelope.data)
    keep = [s.story_id for s in event.stories]
    stale = select(stories.c.story_id).where(
        stories.c.epic_id == event.epic_id, stories.c.story_id.not_in(keep)
    )
    # A regenerated epic's set replaces the old one; what is gone takes its subtasks along.
    await session.execute(delete(subtasks).where(subtasks.c.story_id.in_(stale)))
    await session.execute(
        delete(stories).where(stories.c.epic_id == event.epic_id, stories.c.story_id.not_in(keep))
    )
    for story in event.stories:
        await _upsert(
            session,
            stories,
            "story_id",
            {
                "story_id": story.story_id,
                "tenant_id": envelope.tenant_id,
                "project_id": event.project_id,
                "epic_id": event.epic_id,
                "position": story.order,
                "story": story.model_dump_json(),
                "provenance": event.provenance.model_dump_json(),
                "updated_at": now(),
            },
        )
    await _result_landed(session, envelope, "stories", event.epic_id, on_changed)


async def project_subtasks_generated(
    session: AsyncSession, envelope: Envelope, on_changed: Callable[[str], None]
) -> None:
    event = SubtasksGenerated.model_validate(envelope.data)
    keep = [s.subtask_id for s in event.subtasks]
    await session.execute(
        delete(subtasks).where(
            subtasks.c.story_id == event.story_id, subtasks.c.subtask_id.not_in(keep)
        )
    )
    for subtask in event.subtasks:
        await _upsert(
            session,
            subtasks,
            "subtask_id",
            {
                "subtask_id": subtask.subtask_id,
                "tenant_id": envelope.tenant_id,
                "project_id": event.project_id,
                "epic_id": event.epic_id,
                "story_id": event.story_id,
                "position": subtask.order,
                "subtask": subtask.model_dump_json(),
                "provenance": event.provenance.model_dump_json(),
                "updated_at": now(),
            },
        )
    await _result_landed(session, envelope, "subtasks", event.story_id, on_changed)


async def _upsert(session: AsyncSession, table: Any, key: str, values: dict[str, Any]) -> None:
    result = await session.execute(
        update(table)
        .where(table.c[key] == values[key])
        .values({k: v for k, v in values.items() if k != key})
    )
    if getattr(result, "rowcount", 0) == 0:
        await session.execute(insert(table).values(**values))
