"""The result cache: an answer already paid for is not paid for again.

Keyed by (stage, prompt version, model, hash of the stage's canonical input, hash of the
output schema sent). Entries are written in their own short transaction right after a
successful call, before the caller's work commits, so a crash after the call still keeps
the answer: the retried item finds it and makes no call.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts.backlog import Provenance
from services.runtime.db import dialect_insert
from services.runtime.tables import llm_cache


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    output_json: str
    """The validated output, as the output model's JSON."""
    provenance: Provenance
    """As recorded by the call that paid for it."""


class ResultCache(Protocol):
    async def get(self, key: str) -> CachedAnswer | None: ...

    async def put(self, key: str, answer: CachedAnswer) -> None:
        """Idempotent: an existing entry is kept (insert or ignore)."""

    async def delete(self, key: str) -> None:
        """Drops an entry that no longer passes the request's checks."""


def cache_key(
    stage: str, prompt_version: str, model: str, cache_input: str, schema: dict[str, Any]
) -> str:
    """64 hex characters. The schema is part of it, so changing the output model (or the ids
    an override schema allows) never serves an answer of the old shape."""
    parts = [
        stage,
        prompt_version,
        model,
        _sha256(cache_input),
        _sha256(json.dumps(schema, sort_keys=True, separators=(",", ":"))),
    ]
    return _sha256("\x1f".join(parts))


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class MemoryResultCache:
    """In-process cache: for tests, and for a process that has no database."""

    def __init__(self) -> None:
        self.entries: dict[str, CachedAnswer] = {}

    async def get(self, key: str) -> CachedAnswer | None:
        return self.entries.get(key)

    async def put(self, key: str, answer: CachedAnswer) -> None:
        self.entries.setdefault(key, answer)

    async def delete(self, key: str) -> None:
        self.entries.pop(key, None)


class SqlResultCache:
    """The cache in the service's database (table ``cardflow_llm_cache``), SQLite or
    PostgreSQL. Each method is its own short transaction, never the caller's."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def get(self, key: str) -> CachedAnswer | None:
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(llm_cache.c.output, llm_cache.c.provenance).where(llm_cache.c.key == key)
                )
            ).first()
        if row is None:
            return None
        return CachedAnswer(row.output, Provenance.model_validate_json(row.provenance))

    async def put(self, key: str, answer: CachedAnswer) -> None:
        values = {
            "key": key,
            "output": answer.output_json,
            "provenance": answer.provenance.model_dump_json(),
            "created_at": datetime.now(UTC),
        }
        async with self._sessions.begin() as session:
            statement = dialect_insert(session)(llm_cache).values(**values)
            await session.execute(statement.on_conflict_do_nothing())

    async def delete(self, key: str) -> None:
        async with self._sessions.begin() as session:
            await session.execute(delete(llm_cache).where(llm_cache.c.key == key))
