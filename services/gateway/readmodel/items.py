"""A run's items in the read model: announced once, then moved forward by progress events.
Counts only grow: a terminal item never moves back, except by a retry of its run."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.pipeline import ItemState
from services.gateway.readmodel import runview
from services.gateway.readmodel.facts import now
from services.gateway.readmodel.tables import run_items


@dataclass(frozen=True, slots=True)
class Announced:
    item_id: str
    title: str
    planning: bool = False


def _item(run_id: str, stage: str, item_id: str) -> Any:
    return and_(
        run_items.c.run_id == run_id, run_items.c.stage == stage, run_items.c.item_id == item_id
    )


async def announce(
    session: AsyncSession, run_id: str, stage: str, items: Iterable[Announced]
) -> None:
    """Adds each item as pending, once, in the order given. Announcing again changes nothing
    but a title that was the item's id (a card's copy had not reached the stage yet)."""
    for item in items:
        existing = (
            await session.execute(
                select(run_items.c.title).where(_item(run_id, stage, item.item_id))
            )
        ).first()
        if existing is not None:
            if existing.title == item.item_id and item.title != item.item_id:
                await session.execute(
                    update(run_items)
                    .where(_item(run_id, stage, item.item_id))
                    .values(title=item.title)
                )
            continue
        seq = (
            await session.execute(
                select(func.count()).select_from(run_items).where(run_items.c.run_id == run_id)
            )
        ).scalar_one()
        await session.execute(
            insert(run_items).values(
                run_id=run_id,
                stage=stage,
                item_id=item.item_id,
                seq=int(seq),
                title=item.title,
                state=ItemState.PENDING.value,
                attempts=0,
                tokens_so_far=0,
                planning=item.planning,
                updated_at=now(),
            )
        )


async def move(session: AsyncSession, run_id: str, stage: str, item_id: str, **values: Any) -> bool:
    """Moves an item forward; a terminal item never moves back (counts only grow)."""
    result = await session.execute(
        update(run_items)
        .where(_item(run_id, stage, item_id), run_items.c.state.not_in(runview.TERMINAL))
        .values(updated_at=now(), **values)
    )
    return getattr(result, "rowcount", 0) == 1


async def beat(
    session: AsyncSession, run_id: str, stage: str, item_id: str, tokens_so_far: int
) -> None:
    """A running item's tokens so far."""
    await session.execute(
        update(run_items)
        .where(_item(run_id, stage, item_id), run_items.c.state == ItemState.RUNNING)
        .values(tokens_so_far=tokens_so_far, updated_at=now())
    )


async def requeue(session: AsyncSession, run_id: str, stage: str, item_id: str) -> None:
    """The one move back a terminal item makes: a retry of its run."""
    await session.execute(
        update(run_items)
        .where(
            _item(run_id, stage, item_id),
            run_items.c.state.in_((ItemState.FAILED, ItemState.CANCELLED)),
        )
        .values(
            state=ItemState.PENDING.value,
            started_at=None,
            finished_at=None,
            error_code=None,
            error_message=None,
            tokens_so_far=0,
            updated_at=now(),
        )
    )
