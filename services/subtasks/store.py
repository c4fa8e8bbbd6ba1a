"""The subtasks service's table: the subtasks of each story, replaced as a set."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Column, DateTime, Index, MetaData, String, Table, Text, delete
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.backlog import Provenance, Subtask
from services.runtime.db import dialect_insert

metadata = MetaData()

subtasks = Table(
    "subtasks",
    metadata,
    Column("subtask_id", String(64), primary_key=True),
    Column("story_id", String(64), nullable=False),
    Column("epic_id", String(64), nullable=False),
    Column("project_id", String(64), nullable=False),
    Column("subtask", Text, nullable=False),
    Column("provenance", Text, nullable=False),
    Column("run_id", String(64), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_subtasks_story_id", "story_id"),
)


async def replace_subtasks(
    session: AsyncSession,
    project_id: str,
    epic_id: str,
    story_id: str,
    generated: list[Subtask],
    provenance: Provenance,
    run_id: str,
) -> None:
    """The story's subtasks become exactly ``generated``: ids are by position, so the first
    ones are updated in place, and those past the new count are deleted (a regeneration with
    fewer subtasks leaves no stale extras)."""
    now = datetime.now(UTC)
    for subtask in generated:
        values = {
            "subtask_id": subtask.subtask_id,
            "story_id": story_id,
            "epic_id": epic_id,
            "project_id": project_id,
            "subtask": subtask.model_dump_json(),
            "provenance": provenance.model_dump_json(),
            "run_id": run_id,
            "updated_at": now,
        }
        statement = dialect_insert(session)(subtasks).values(**values)
        update = {k: v for k, v in values.items() if k != "subtask_id"}
        await session.execute(
            statement.on_conflict_do_update(index_elements=["subtask_id"], set_=update)
        )
    await session.execute(
        delete(subtasks).where(
            subtasks.c.story_id == story_id,
            subtasks.c.subtask_id.not_in([s.subtask_id for s in generated]),
        )
    )
