"""The items of a stage's runs (``cardflow_work_items``), each change inside the caller's
transaction with its progress event: add, claim under a lease, renew it, end an item
(succeed, fail, postpone, cancel), release waiting ones, requeue failed ones, and read their
states. This is the one writer of the items table; the runs' states are ``runs.py``'s."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.backlog import Provenance
from contracts.events import AttemptUsage, ErrorCode, PlannedItem
from contracts.pipeline import ItemState
from services.runtime.work.progress import Progress
from services.runtime.work.records import (
    TERMINAL,
    Beat,
    NewItem,
    WorkItem,
    WorkRun,
    now,
    read_run,
)
from services.runtime.work.tables import work_items, work_runs

ERROR_MESSAGE_CHARS = 2000  # of an error message, kept with the item

UNLEASED: Final[dict[str, Any]] = {"lease_owner": None, "lease_until": None}
CANCELLED: Final[dict[str, Any]] = {
    "state": ItemState.CANCELLED.value,
    "error_code": ErrorCode.CANCELLED.value,
    "error_message": "the run was cancelled",
}
"""The columns of an item its run's cancel ended."""


# --- pure: which items, which rows (the I/O is ItemBook's) --------------------------------


def ready(at: datetime) -> ColumnElement[bool]:
    """An item a replica may claim: pending and due, or running with its lease run out."""
    return or_(
        and_(work_items.c.state == ItemState.PENDING.value, work_items.c.not_before <= at),
        and_(work_items.c.state == ItemState.RUNNING.value, work_items.c.lease_until < at),
    )


def in_states(run_id: str, states: Iterable[ItemState]) -> ColumnElement[bool]:
    return and_(work_items.c.run_id == run_id, work_items.c.state.in_([s.value for s in states]))


def not_done(run_id: str) -> ColumnElement[bool]:
    return and_(
        work_items.c.run_id == run_id, work_items.c.state.not_in([s.value for s in TERMINAL])
    )


def unseen(items: Sequence[NewItem], existing: Collection[str]) -> list[NewItem]:
    """The items not already in the run, each id once (in its first place, with its last
    values)."""
    return [i for i in dict((i.item_id, i) for i in items).values() if i.item_id not in existing]


def item_row(run: WorkRun, item: NewItem, seq: int, at: datetime) -> dict[str, Any]:
    """A new item's row. Items of a cancelled run are recorded, never worked: cancelled at
    once (the gateway already counts the ones announced by their parent's success)."""
    state = {"state": (ItemState.WAITING if item.wait_key else ItemState.PENDING).value}
    return {
        "run_id": run.run_id,
        "item_id": item.item_id,
        "seq": seq,
        "title": item.title,
        "payload": json.dumps(item.payload),
        "wait_key": item.wait_key,
        "attempts": 0,
        "not_before": at,
        "created_at": at,
        "updated_at": at,
        **(CANCELLED if run.cancel_requested else state),
    }


class ItemBook:
    """The items of one stage's runs."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    async def add(
        self, session: AsyncSession, run: WorkRun, items: Sequence[NewItem]
    ) -> list[NewItem]:
        """Records the items not already in the run (a redelivered command adds nothing) and
        returns them to be worked; none in a cancelled run, where they are cancelled."""
        existing = set(
            (
                await session.execute(
                    select(work_items.c.item_id).where(
                        work_items.c.run_id == run.run_id,
                        work_items.c.item_id.in_([i.item_id for i in items]),
                    )
                )
            ).scalars()
        )
        count = (
            await session.execute(
                select(func.count())
                .select_from(work_items)
                .where(work_items.c.run_id == run.run_id)
            )
        ).scalar_one()
        new = unseen(items, existing)
        at = now()
        for offset, item in enumerate(new):
            await session.execute(
                work_items.insert().values(**item_row(run, item, int(count) + offset, at))
            )
            if run.cancel_requested:
                await self.progress.cancelled(session, run, item.item_id)
        if run.cancel_requested:
            return []
        if new:
            await self.progress.planned(session, run, new)
        return new

    async def item_states(self, session: AsyncSession, run_id: str) -> dict[str, ItemState]:
        rows = await session.execute(
            select(work_items.c.item_id, work_items.c.state).where(work_items.c.run_id == run_id)
        )
        return {r.item_id: ItemState(r.state) for r in rows}

    async def all_done(self, session: AsyncSession, run_id: str) -> bool:
        """Every item of the run is terminal (or it has none)."""
        open_items = (
            await session.execute(
                select(func.count()).select_from(work_items).where(not_done(run_id))
            )
        ).scalar_one()
        return int(open_items) == 0

    async def release(self, session: AsyncSession, wait_key: str) -> int:
        """Makes waiting items whose input has now arrived ready to be worked."""
        result = await session.execute(
            update(work_items)
            .where(
                work_items.c.wait_key == wait_key,
                work_items.c.state == ItemState.WAITING.value,
            )
            .values(state=ItemState.PENDING.value, updated_at=now())
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def waiting(self, session: AsyncSession) -> int:
        """Items a replica could claim now: the stage's queue depth."""
        statement = (
            select(func.count())
            .select_from(work_items.join(work_runs, work_runs.c.run_id == work_items.c.run_id))
            .where(ready(now()), work_runs.c.cancel_requested.is_(False))
        )
        return int((await session.execute(statement)).scalar_one())

    async def claim(
        self, session: AsyncSession, owner: str, limit: int, lease_s: float
    ) -> list[WorkItem]:
        """Takes up to ``limit`` ready items (or items whose lease ran out) for ``owner``."""
        at = now()
        due = ready(at)
        candidates = (
            await session.execute(
                select(work_items.c.run_id, work_items.c.item_id)
                .join(work_runs, work_runs.c.run_id == work_items.c.run_id)
                .where(due, work_runs.c.cancel_requested.is_(False))
                .order_by(work_items.c.not_before, work_items.c.seq)
                .limit(limit)
                .with_for_update(skip_locked=True, of=work_items)
            )
        ).all()
        claimed: list[WorkItem] = []
        for run_id, item_id in candidates:
            result = await session.execute(
                update(work_items)
                .where(work_items.c.run_id == run_id, work_items.c.item_id == item_id, due)
                .values(
                    state=ItemState.RUNNING.value,
                    lease_owner=owner,
                    lease_until=at + timedelta(seconds=lease_s),
                    attempts=work_items.c.attempts + 1,
                    updated_at=at,
                )
                .returning(work_items.c.title, work_items.c.payload, work_items.c.attempts)
            )
            row = result.first()
            if row is None:
                continue
            run = await read_run(session, run_id)
            assert run is not None
            item = WorkItem(run, item_id, row.title, json.loads(row.payload), int(row.attempts))
            await self.progress.started(session, item)
            claimed.append(item)
        return claimed

    async def _guarded(
        self, session: AsyncSession, item: WorkItem, owner: str, **values: Any
    ) -> bool:
        """Updates the item only while ``owner`` still holds it: a lost lease changes nothing."""
        result = await session.execute(
            update(work_items)
            .where(
                work_items.c.run_id == item.run.run_id,
                work_items.c.item_id == item.item_id,
                work_items.c.state == ItemState.RUNNING.value,
                work_items.c.lease_owner == owner,
            )
            .values(updated_at=now(), **values)
        )
        return getattr(result, "rowcount", 0) == 1

    async def heartbeat(
        self, session: AsyncSession, item: WorkItem, owner: str, lease_s: float, tokens: int
    ) -> Beat:
        held = await self._guarded(
            session, item, owner, lease_until=now() + timedelta(seconds=lease_s)
        )
        if not held:
            return Beat.LOST
        run = await read_run(session, item.run.run_id)
        if run is not None and run.cancel_requested:
            return Beat.CANCELLED
        await self.progress.heartbeat(session, item, tokens)
        return Beat.HELD

    async def cancel_item(self, session: AsyncSession, item: WorkItem, owner: str) -> bool:
        """The item stops, cancelled (its run was), while ``owner`` still holds it."""
        done = await self._guarded(session, item, owner, **UNLEASED, **CANCELLED)
        if done:
            await self.progress.cancelled(session, item.run, item.item_id)
        return done

    async def succeed(
        self,
        session: AsyncSession,
        item: WorkItem,
        owner: str,
        provenance: Provenance,
        produced: Sequence[PlannedItem] = (),
    ) -> bool:
        done = await self._guarded(
            session,
            item,
            owner,
            **UNLEASED,
            state=ItemState.SUCCEEDED.value,
            error_code=None,
            error_message=None,
        )
        if done:
            await self.progress.succeeded(session, item, provenance, produced)
        return done

    async def fail(
        self,
        session: AsyncSession,
        item: WorkItem,
        owner: str,
        code: ErrorCode,
        message: str,
        *,
        usage: AttemptUsage | None = None,
    ) -> bool:
        done = await self._guarded(
            session,
            item,
            owner,
            **UNLEASED,
            state=ItemState.FAILED.value,
            error_code=code.value,
            error_message=message[:ERROR_MESSAGE_CHARS],
        )
        if done:
            await self.progress.failed(session, item, code, message, usage)
        return done

    async def postpone(
        self,
        session: AsyncSession,
        item: WorkItem,
        owner: str,
        delay_s: float,
        reason: str,
        *,
        code: ErrorCode = ErrorCode.INTERNAL,
        usage: AttemptUsage | None = None,
    ) -> bool:
        """Back to pending, not before ``delay_s``: other items go on meanwhile."""
        retry_at = now() + timedelta(seconds=delay_s)
        done = await self._guarded(
            session,
            item,
            owner,
            **UNLEASED,
            state=ItemState.PENDING.value,
            not_before=retry_at,
        )
        if done:
            await self.progress.postponed(
                session,
                item,
                code=code,
                reason=reason,
                delay_s=delay_s,
                retry_at=retry_at,
                usage=usage,
            )
        return done

    # --- a run's cancel and retry ---------------------------------------------------------

    async def cancel(self, session: AsyncSession, run: WorkRun, item_id: str) -> None:
        """Cancels an item that is not terminal, whoever holds it."""
        await session.execute(
            update(work_items)
            .where(work_items.c.item_id == item_id, not_done(run.run_id))
            .values(**UNLEASED, **CANCELLED, updated_at=now())
        )
        await self.progress.cancelled(session, run, item_id)

    async def cancel_unstarted(self, session: AsyncSession, run: WorkRun) -> None:
        """The run's waiting and pending items are cancelled at once."""
        unstarted = (
            await session.execute(
                select(work_items.c.item_id).where(
                    in_states(run.run_id, (ItemState.WAITING, ItemState.PENDING))
                )
            )
        ).scalars()
        for item_id in list(unstarted):
            await self.cancel(session, run, item_id)

    async def reap_cancelled(self, session: AsyncSession) -> list[str]:
        """Running items of cancelled runs whose holder is gone (lease ran out) are cancelled:
        nobody else will claim them. Returns the runs touched."""
        rows = (
            await session.execute(
                select(work_items.c.run_id, work_items.c.item_id)
                .join(work_runs, work_runs.c.run_id == work_items.c.run_id)
                .where(
                    work_runs.c.cancel_requested.is_(True),
                    work_items.c.state == ItemState.RUNNING.value,
                    work_items.c.lease_until < now(),
                )
                .with_for_update(skip_locked=True, of=work_items)
            )
        ).all()
        runs: list[str] = []
        for run_id, item_id in rows:
            run = await read_run(session, run_id)
            assert run is not None
            await self.cancel(session, run, item_id)
            if run_id not in runs:
                runs.append(run_id)
        return runs

    async def requeue_ended(self, session: AsyncSession, run: WorkRun) -> list[str]:
        """Failed and cancelled items go back to the queue with their attempts reset;
        returns their ids, in the run's order."""
        again = list(
            (
                await session.execute(
                    select(work_items.c.item_id)
                    .where(in_states(run.run_id, (ItemState.FAILED, ItemState.CANCELLED)))
                    .order_by(work_items.c.seq)
                )
            ).scalars()
        )
        if not again:
            return []
        at = now()
        await session.execute(
            update(work_items)
            .where(work_items.c.run_id == run.run_id, work_items.c.item_id.in_(again))
            .values(
                **UNLEASED,
                state=ItemState.PENDING.value,
                attempts=0,
                not_before=at,
                error_code=None,
                error_message=None,
                updated_at=at,
            )
        )
        for item_id in again:
            await self.progress.requeued(session, run, item_id)
        return again
