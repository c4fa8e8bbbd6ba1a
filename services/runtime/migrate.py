"""Alembic migrations per service, run programmatically at service start.

Every service database holds two histories, each with its own version table: the runtime's
(inbox, outbox) and the service's own. Replicas starting together on PostgreSQL take an
advisory lock so only one migrates.

The same migrations without starting the service (a deployment's migration job)::

    python -m services.runtime.migrate services.analysis.app:MIGRATIONS

migrates the database of the usual settings (``CARDFLOW_DATABASE_URL``, or the SQLite file of
``CARDFLOW_SERVICE_NAME``) and the fleet's (``CARDFLOW_FLEET_DATABASE_URL``), exactly as a
service's start does, then exits. The runtime knows no service: the caller names the
histories, as ``module:attribute``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
import weakref
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command, context
from alembic.config import Config
from sqlalchemy import Connection, MetaData, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from services.runtime.settings import Settings

RUNTIME_MIGRATIONS = Path(__file__).parent / "migrations"


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


def load_history(spec: str) -> MigrationHistory:
    """The history ``module:attribute`` names, e.g. ``services.analysis.app:MIGRATIONS``."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"{spec!r}: expected module:attribute")
    try:
        value = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"{spec!r}: {error}") from None
    if not isinstance(value, MigrationHistory):
        raise ValueError(f"{spec!r} is a {type(value).__name__}, not a MigrationHistory")
    return value


async def migrate_databases(settings: Settings, histories: Sequence[MigrationHistory]) -> None:
    """What a service's start migrates (``service.prepare``), without the service: its own
    database (the runtime's history, then ``histories``) and the fleet's."""
    from services.runtime.db import make_engine, make_sessions
    from services.runtime.fleet import build_fleet  # imports this module

    engine = make_engine(settings.resolved_database_url(), echo=settings.database_echo)
    fleet = build_fleet(settings, engine, make_sessions(engine))
    try:
        await migrate(engine, *histories)
        await fleet.prepare()
    finally:
        await fleet.close()
        await engine.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    from services.runtime.fleet import FLEET_HISTORY  # imports this module

    parser = argparse.ArgumentParser(
        prog="python -m services.runtime.migrate",
        description="Migrate a service's database and the fleet's to head, then exit "
        "(settings from the environment, as the service's own start).",
    )
    parser.add_argument(
        "histories",
        nargs="+",
        metavar="MODULE:ATTRIBUTE",
        help="the service's migration history, e.g. services.analysis.app:MIGRATIONS",
    )
    args = parser.parse_args(argv)
    try:
        histories = [load_history(spec) for spec in args.histories]
    except ValueError as error:
        parser.error(str(error))
    settings = Settings()
    asyncio.run(migrate_databases(settings, histories))
    names = ", ".join(h.name for h in (RUNTIME_HISTORY, *histories))
    print(f"migrated {_shown(settings.resolved_database_url())} to head: {names}")
    fleet_url = settings.resolved_fleet_database_url()
    if fleet_url:
        print(f"migrated {_shown(fleet_url)} to head: {RUNTIME_HISTORY.name}, {FLEET_HISTORY.name}")
    else:
        print(f"migrated the same database to head: {FLEET_HISTORY.name}")
    return 0


def _shown(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


if __name__ == "__main__":
    # Run as the canonical module, not as __main__: the services' histories are instances of
    # services.runtime.migrate.MigrationHistory, which a second copy of this module would not
    # recognise.
    from services.runtime.migrate import main as canonical_main

    sys.exit(canonical_main())
