"""The transactional outbox: events are written with the state that caused them.

``enqueue`` is called inside the handler's transaction; the relay (``relay.py``) publishes
the rows afterwards. An event therefore leaves the service if and only if its state was
committed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Envelope
from services.runtime.tables import outbox
from services.runtime.tracing import traceparent


@dataclass(frozen=True, slots=True)
class PendingEvent:
    seq: int
    event_id: str
    topic: str
    key: str
    payload: bytes
    headers: dict[str, str]


def kafka_headers(envelope: Envelope) -> dict[str, str]:
    """Headers that let tools and FastStream follow a message without parsing its body."""
    headers = {
        "correlation_id": envelope.correlation_id,
        "ce_id": envelope.id,
        "ce_type": envelope.type,
        "ce_source": envelope.source,
        "ce_schema_version": str(envelope.schema_version),
    }
    if envelope.causation_id:
        headers["causation_id"] = envelope.causation_id
    if envelope.run_id:
        headers["traceparent"] = traceparent(envelope.run_id)
    return headers


async def enqueue(session: AsyncSession, topic: str, envelope: Envelope) -> None:
    await session.execute(
        outbox.insert().values(
            event_id=envelope.id,
            topic=topic,
            key=envelope.key,
            payload=envelope.to_bytes(),
            headers=json.dumps(kafka_headers(envelope)),
            created_at=datetime.now(UTC),
        )
    )


async def lock_pending(session: AsyncSession, limit: int) -> list[PendingEvent]:
    """The oldest unpublished rows (row-locked on PostgreSQL while the transaction lasts)."""
    statement = (
        select(
            outbox.c.seq,
            outbox.c.event_id,
            outbox.c.topic,
            outbox.c.key,
            outbox.c.payload,
            outbox.c.headers,
        )
        .where(outbox.c.published_at.is_(None))
        .order_by(outbox.c.seq)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = (await session.execute(statement)).all()
    return [
        PendingEvent(r.seq, r.event_id, r.topic, r.key, bytes(r.payload), json.loads(r.headers))
        for r in rows
    ]


async def mark_published(session: AsyncSession, seqs: list[int]) -> None:
    if seqs:
        await session.execute(
            update(outbox).where(outbox.c.seq.in_(seqs)).values(published_at=datetime.now(UTC))
        )


async def pending_count(session: AsyncSession) -> int:
    statement = select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
    return int((await session.execute(statement)).scalar_one())


async def backlog(session: AsyncSession) -> tuple[int, datetime | None]:
    """How many rows wait to be published, and when the oldest was written."""
    statement = select(func.count(), func.min(outbox.c.created_at)).where(
        outbox.c.published_at.is_(None)
    )
    count, oldest = (await session.execute(statement)).one()
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)  # SQLite keeps no zone
    return int(count), oldest


async def mark_published_exact(session: AsyncSession, events: list[tuple[int, str]]) -> None:
    """Marks rows matching both sequence number and event id (recovery from the ledger)."""
    now = datetime.now(UTC)
    for seq, event_id in events:
        await session.execute(
            update(outbox)
            .where(outbox.c.seq == seq, outbox.c.event_id == event_id)
            .where(outbox.c.published_at.is_(None))
            .values(published_at=now)
        )
