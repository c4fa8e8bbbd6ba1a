"""Loads what the run object is computed from: a run's row, its items and which of their
results have landed (``runview.RunFacts``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway.readmodel import runview
from services.gateway.readmodel.tables import item_results, run_items


async def load_facts(session: AsyncSession, row: Any) -> runview.RunFacts:
    landed = {
        (r.stage, r.item_id)
        for r in await session.execute(
            select(item_results.c.stage, item_results.c.item_id).where(
                item_results.c.run_id == row.run_id
            )
        )
    }
    items = await session.execute(
        select(run_items).where(run_items.c.run_id == row.run_id).order_by(run_items.c.seq)
    )
    return runview.RunFacts(
        stage=row.stage,
        stages_finished=frozenset(json.loads(row.stages_finished)),
        cancel_requested=bool(row.cancel_requested),
        items=[
            runview.ItemView(
                stage=i.stage,
                item_id=i.item_id,
                title=i.title,
                state=i.state,
                attempts=i.attempts,
                tokens_so_far=i.tokens_so_far,
                started_at=as_utc(i.started_at),
                finished_at=as_utc(i.finished_at),
                error_code=i.error_code,
                error_message=i.error_message,
                result_landed=(i.stage, i.item_id) in landed,
                planning=bool(i.planning),
            )
            for i in items
        ],
    )


def as_utc(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything here is UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def now() -> datetime:
    return datetime.now(UTC)
