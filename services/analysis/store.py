"""The analysis service's tables: its copy of the cards, and their analyses."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text, select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.backlog import CardAnalysis, Provenance
from contracts.documents import DocumentContext
from services.analysis.logic import Card
from services.runtime.db import dialect_insert

metadata = MetaData()

cards = Table(
    "analysis_cards",
    metadata,
    Column("card_id", String(64), primary_key=True),
    Column("project_id", String(64), nullable=False),
    Column("tenant_id", String(64), nullable=False),
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("position", Integer, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("document", Text, nullable=True),
)

analyses = Table(
    "analysis_results",
    metadata,
    Column("card_id", String(64), primary_key=True),
    Column("project_id", String(64), nullable=False),
    Column("analysis", Text, nullable=False),
    Column("analysis_version", String(64), nullable=False),
    Column("provenance", Text, nullable=False),
    Column("run_id", String(64), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


async def save_card(session: AsyncSession, card: Card, tenant_id: str) -> None:
    """Stores (or replaces: an edited card is submitted again) this service's copy."""
    values = {
        "card_id": card.card_id,
        "project_id": card.project_id,
        "tenant_id": tenant_id,
        "title": card.title,
        "body": card.body,
        "position": card.position,
        "received_at": datetime.now(UTC),
        "document": card.document.model_dump_json() if card.document is not None else None,
    }
    statement = dialect_insert(session)(cards).values(**values)
    changed = ("title", "body", "position", "document")
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["card_id"], set_={k: values[k] for k in changed}
        )
    )


async def get_card(session: AsyncSession, card_id: str) -> Card | None:
    row = (await session.execute(select(cards).where(cards.c.card_id == card_id))).first()
    if row is None:
        return None
    document = (
        DocumentContext.model_validate_json(row.document) if row.document is not None else None
    )
    return Card(row.card_id, row.project_id, row.title, row.body, row.position, document)


async def card_titles(session: AsyncSession, card_ids: list[str]) -> dict[str, str]:
    rows = await session.execute(
        select(cards.c.card_id, cards.c.title).where(cards.c.card_id.in_(card_ids))
    )
    return {r.card_id: r.title for r in rows}


async def save_analysis(
    session: AsyncSession,
    analysis: CardAnalysis,
    project_id: str,
    version: str,
    provenance: Provenance,
    run_id: str,
) -> None:
    """One analysis per card: a rerun replaces it in place."""
    values = {
        "card_id": analysis.card_id,
        "project_id": project_id,
        "analysis": analysis.model_dump_json(),
        "analysis_version": version,
        "provenance": provenance.model_dump_json(),
        "run_id": run_id,
        "updated_at": datetime.now(UTC),
    }
    statement = dialect_insert(session)(analyses).values(**values)
    update = {k: v for k, v in values.items() if k != "card_id"}
    await session.execute(statement.on_conflict_do_update(index_elements=["card_id"], set_=update))


async def analysis_versions(session: AsyncSession, card_ids: list[str]) -> dict[str, str]:
    rows = await session.execute(
        select(analyses.c.card_id, analyses.c.analysis_version).where(
            analyses.c.card_id.in_(card_ids)
        )
    )
    return {r.card_id: r.analysis_version for r in rows}


def load_analysis(raw: str) -> CardAnalysis:
    return CardAnalysis.model_validate(json.loads(raw))
