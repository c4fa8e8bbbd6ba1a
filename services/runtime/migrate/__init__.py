"""Alembic migrations per service, run programmatically at service start.

Every service database holds two histories, each with its own version table: the runtime's
(inbox, outbox) and the service's own. Replicas starting together on PostgreSQL take an
advisory lock so only one migrates.

The same migrations without starting the service (a deployment's migration job) are the
command of ``job.py``: ``python -m services.runtime.migrate services.analysis.app:MIGRATIONS``.
This module is the primitive only, so the fleet (whose setup migrates through it) and the
command (which builds the fleet) import it without importing each other.
"""

from __future__ import annotations

import asyncio
import weakref
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command, context
from alembic.config import Config
from sqlalchemy import Connection, MetaData, text
from sqlalchemy.ext.asyncio import AsyncEngine

RUNTIME_MIGRATIONS = Path(__file__).parents[1] / "migrations"


@dataclass(frozen=True, slots=True)
class MigrationHistory:
    name: str
    """Names the version table: ``<name>_alembic_version``."""
    script_location: Path


RUNTIME_HISTORY = MigrationHistory("cardflow_runtime", RUNTIME_MIGRATIONS)


async def migrate(engine: AsyncEngine, *histories: MigrationHistory) -> None:
    """Upgrades the runtime's tables, then each given history, to head.

    Safe to call from replicas at once (a database lock, below) and from several coroutines
    of one process at once, on the same database or not (an in-process lock: alembic keeps
    the running migration in module globals, ``context`` and ``op``, so two migrations
    interleaving at their awaits would run each other's steps).
    """
    async with _in_process_lock(), engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            lock_id = zlib.crc32(b"cardflow-migrations")
            await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": lock_id})
        # SQLite needs no lock here: the engine begins every transaction IMMEDIATE, so a
        # second migrator waits for the first to commit, then finds the tables at head.
        await conn.run_sync(_upgrade_all, (RUNTIME_HISTORY, *histories))


_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def _in_process_lock() -> asyncio.Lock:
    # One per event loop: an asyncio.Lock belongs to the loop that first waits on it.
    loop = asyncio.get_running_loop()
    lock = _locks.get(loop)
    if lock is None:
        lock = _locks[loop] = asyncio.Lock()
    return lock


def _upgrade_all(connection: Connection, histories: tuple[MigrationHistory, ...]) -> None:
    for history in histories:
        config = Config()
        config.set_main_option("script_location", str(history.script_location))
        config.attributes["connection"] = connection
        config.attributes["version_table"] = f"{history.name}_alembic_version"
        command.upgrade(config, "head")


def run_env(target_metadata: MetaData) -> None:
    """The body of every ``migrations/env.py``: migrate on the connection handed in."""
    connection: Any = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError(
            "cardflow migrations run through services.runtime.migrate.migrate(), "
            "which passes the connection; the alembic CLI is not wired."
        )
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table=context.config.attributes["version_table"],
        render_as_batch=connection.dialect.name == "sqlite",
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()
