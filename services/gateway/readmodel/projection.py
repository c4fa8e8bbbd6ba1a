"""Projects progress and domain events into the read model, idempotently (the runtime's
inbox skips redelivered events) and in order per key (runs, cards, epics, stories).

Every change to a run bumps its version, which is the ETag clients poll with; the run's
long-pollers in this process are woken when the transaction commits (``RunWatch.flush``).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Envelope
from services.gateway.readmodel import results
from services.gateway.readmodel.progress import project_progress
from services.gateway.readmodel.watch import RunWatch


class Projection:
    def __init__(self, watch: RunWatch) -> None:
        self.watch = watch

    async def apply_progress(self, session: AsyncSession, envelope: Envelope) -> None:
        await project_progress(session, envelope, self.watch.changed)

    async def apply_card_analyzed(self, session: AsyncSession, envelope: Envelope) -> None:
        await results.project_card_analyzed(session, envelope, self.watch.changed)

    async def apply_epic_generated(self, session: AsyncSession, envelope: Envelope) -> None:
        await results.project_epic_generated(session, envelope, self.watch.changed)

    async def apply_stories_generated(self, session: AsyncSession, envelope: Envelope) -> None:
        await results.project_stories_generated(session, envelope, self.watch.changed)

    async def apply_subtasks_generated(self, session: AsyncSession, envelope: Envelope) -> None:
        await results.project_subtasks_generated(session, envelope, self.watch.changed)
