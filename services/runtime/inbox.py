"""Idempotent consumption: a record of each (consumer, event) handled.

Written in the transaction of the effect itself, so the two commit or roll back together.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.runtime.db import dialect_insert
from services.runtime.tables import inbox


async def claim(session: AsyncSession, consumer: str, event_id: str) -> bool:
    """Records the event as handled by ``consumer``; False when it already was.

    Call inside the transaction that writes the effect: if that transaction rolls back the
    claim goes with it, and a redelivery is handled afresh.
    """
    values = {"consumer": consumer, "event_id": event_id, "processed_at": datetime.now(UTC)}
    statement = dialect_insert(session)(inbox).values(**values).on_conflict_do_nothing()
    result = await session.execute(statement)
    return bool(getattr(result, "rowcount", 0) == 1)


async def was_handled(session: AsyncSession, consumer: str, event_id: str) -> bool:
    row = await session.execute(
        select(inbox.c.event_id).where(inbox.c.consumer == consumer, inbox.c.event_id == event_id)
    )
    return row.first() is not None
