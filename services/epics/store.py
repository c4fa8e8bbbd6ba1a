"""The epics service's tables: its copy of the analysed cards, runs waiting for analyses,
and the epics."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    delete,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.backlog import CardAnalysis, Epic, Provenance
from services.epics.logic import AnalysedCard
from services.runtime.db import dialect_insert

metadata = MetaData()

analysed_cards = Table(
    "epics_analysed_cards",
    metadata,
    Column("card_id", String(64), primary_key=True),
    Column("project_id", String(64), nullable=False),
    Column("title", Text, nullable=False),
    Column("position", Integer, nullable=False),
    Column("analysis", Text, nullable=False),
    Column("analysis_version", String(64), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# One row per (run, card) whose analysis the run still waits for, in the version it names
# (null on rows from before versions were kept: any analysis of the card then).
awaited = Table(
    "epics_awaited_analyses",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("card_id", String(64), primary_key=True),
    Column("analysis_version", String(64), nullable=True),
)

epics = Table(
    "epics",
    metadata,
    Column("epic_id", String(64), primary_key=True),
    Column("project_id", String(64), nullable=False),
    Column("epic", Text, nullable=False),
    Column("provenance", Text, nullable=False),
    Column("run_id", String(64), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("superseded_by", String(64), nullable=True),
)


async def save_analysed_card(
    session: AsyncSession, project_id: str, card: AnalysedCard, version: str
) -> None:
    values = {
        "card_id": card.card_id,
        "project_id": project_id,
        "title": card.title,
        "position": card.position,
        "analysis": card.analysis.model_dump_json(),
        "analysis_version": version,
        "updated_at": datetime.now(UTC),
    }
    statement = dialect_insert(session)(analysed_cards).values(**values)
    changes = {k: v for k, v in values.items() if k != "card_id"}
    await session.execute(statement.on_conflict_do_update(index_elements=["card_id"], set_=changes))


async def analysed(
    session: AsyncSession, card_ids: list[str]
) -> dict[str, tuple[AnalysedCard, str]]:
    rows = await session.execute(
        select(analysed_cards).where(analysed_cards.c.card_id.in_(card_ids))
    )
    return {
        r.card_id: (
            AnalysedCard(
                r.card_id,
                r.title,
                CardAnalysis.model_validate(json.loads(r.analysis)),
                r.position,
            ),
            r.analysis_version,
        )
        for r in rows
    }


async def await_analyses(session: AsyncSession, run_id: str, versions: dict[str, str]) -> None:
    """Records that the run waits for these analyses: card id -> the version it names."""
    for card_id, version in versions.items():
        await session.execute(
            dialect_insert(session)(awaited)
            .values(run_id=run_id, card_id=card_id, analysis_version=version)
            .on_conflict_do_nothing()
        )


async def analysis_arrived(session: AsyncSession, card_id: str, version: str) -> list[str]:
    """Removes the card from the wait list of every run waiting for this version of its
    analysis; returns those runs. A run waiting for another version (the analysis of an
    edited card, when an older one arrives late) keeps waiting."""
    this = and_(
        awaited.c.card_id == card_id,
        or_(awaited.c.analysis_version == version, awaited.c.analysis_version.is_(None)),
    )
    runs = list((await session.execute(select(awaited.c.run_id).where(this))).scalars())
    await session.execute(delete(awaited).where(this))
    return runs


async def still_awaited(session: AsyncSession, run_id: str) -> int:
    rows = await session.execute(select(awaited.c.card_id).where(awaited.c.run_id == run_id))
    return len(rows.all())


async def save_epic(session: AsyncSession, epic: Epic, provenance: Provenance, run_id: str) -> None:
    values = {
        "epic_id": epic.epic_id,
        "project_id": epic.project_id,
        "epic": epic.model_dump_json(),
        "provenance": provenance.model_dump_json(),
        "run_id": run_id,
        "updated_at": datetime.now(UTC),
        "superseded_by": None,
    }
    statement = dialect_insert(session)(epics).values(**values)
    changes = {k: v for k, v in values.items() if k != "epic_id"}
    await session.execute(statement.on_conflict_do_update(index_elements=["epic_id"], set_=changes))


async def current_epics(session: AsyncSession, project_id: str) -> dict[str, list[str]]:
    """The project's epics no later grouping replaced: epic id → the cards it covers."""
    rows = await session.execute(
        select(epics.c.epic_id, epics.c.epic).where(
            epics.c.project_id == project_id, epics.c.superseded_by.is_(None)
        )
    )
    return {r.epic_id: Epic.model_validate_json(r.epic).card_ids for r in rows}


async def supersede(session: AsyncSession, project_id: str, old: list[str], by: str) -> None:
    if old:
        await session.execute(
            update(epics)
            .where(epics.c.project_id == project_id, epics.c.epic_id.in_(old))
            .values(superseded_by=by, updated_at=datetime.now(UTC))
        )
