"""Transaction-scoped locks on names, for handlers of different topics that meet on the
same entity (a command waiting for an input, and the event bringing that input).

On PostgreSQL (READ COMMITTED) two such transactions could each miss the other's
uncommitted row and leave an item waiting forever; an advisory lock per name serialises
them. SQLite needs nothing: its transactions take the write lock when they begin
(``BEGIN IMMEDIATE``, see ``db.py``), so they never interleave.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


async def lock_names(session: AsyncSession, names: Iterable[str]) -> None:
    """Locks each name until the transaction ends; sorted, so two lockers never deadlock."""
    if session.bind is None or session.bind.dialect.name != "postgresql":
        return
    keys = sorted({zlib.crc32(name.encode()) for name in names})
    for key in keys:
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
