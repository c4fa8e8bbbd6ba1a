"""The stories service's table: the stories of each epic, replaced as a set."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Column, DateTime, Index, MetaData, String, Table, Text, delete
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.backlog import Provenance, Story
from services.runtime.db import dialect_insert

metadata = MetaData()

stories = Table(
    "stories",
    metadata,
    Column("story_id", String(64), primary_key=True),
    Column("epic_id", String(64), nullable=False),
    Column("project_id", String(64), nullable=False),
    Column("story", Text, nullable=False),
    Column("provenance", Text, nullable=False),
    Column("run_id", String(64), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_stories_epic_id", "epic_id"),
)


async def replace_stories(
    session: AsyncSession,
    project_id: str,
    epic_id: str,
    generated: list[Story],
    provenance: Provenance,
    run_id: str,
) -> None:
    """The epic's stories become exactly ``generated``: ids are by position, so the first ones
    are updated in place, and those past the new count are deleted (a regeneration with fewer
    stories leaves no stale extras; one with the same count changes no id)."""
    now = datetime.now(UTC)
    for story in generated:
        values = {
            "story_id": story.story_id,
            "epic_id": epic_id,
            "project_id": project_id,
            "story": story.model_dump_json(),
            "provenance": provenance.model_dump_json(),
            "run_id": run_id,
            "updated_at": now,
        }
        statement = dialect_insert(session)(stories).values(**values)
        update = {k: v for k, v in values.items() if k != "story_id"}
        await session.execute(
            statement.on_conflict_do_update(index_elements=["story_id"], set_=update)
        )
    await session.execute(
        delete(stories).where(
            stories.c.epic_id == epic_id,
            stories.c.story_id.not_in([s.story_id for s in generated]),
        )
    )
