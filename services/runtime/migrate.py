"""Alembic migrations per service, run programmatically at service start.

Every service database holds two histories, each with its own version table: the runtime's
(inbox, outbox) and the service's own. Replicas starting together on PostgreSQL take an
advisory lock so only one migrates.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command, context
from alembic.config import Config
from sqlalchemy import Connection, MetaData, text
from sqlalchemy.ext.asyncio import AsyncEngine

RUNTIME_MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass(frozen=True, slots=True)
class MigrationHistory:
    name: str
    """Names the version table: ``<name>_alembic_version``."""
    script_location: Path


RUNTIME_HISTORY = MigrationHistory("cardflow_runtime", RUNTIME_MIGRATIONS)


async def migrate(engine: AsyncEngine, *histories: MigrationHistory) -> None:
    """Upgrades the runtime's tables, then each given history, to head."""
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            lock_id = zlib.crc32(b"cardflow-migrations")
            await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": lock_id})
        await conn.run_sync(_upgrade_all, (RUNTIME_HISTORY, *histories))


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
