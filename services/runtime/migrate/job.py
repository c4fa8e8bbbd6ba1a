"""``python -m services.runtime.migrate services.analysis.app:MIGRATIONS``: migrates the
database of the usual settings (``CARDFLOW_DATABASE_URL``, or the SQLite file of
``CARDFLOW_SERVICE_NAME``) and the fleet's (``CARDFLOW_FLEET_DATABASE_URL``), exactly as a
service's start does, then exits. The runtime knows no service: the caller names the
histories, as ``module:attribute``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
from collections.abc import Sequence

from sqlalchemy.engine import make_url

from services.runtime.db import make_engine, make_sessions
from services.runtime.fleet import FLEET_HISTORY, build_fleet
from services.runtime.migrate import RUNTIME_HISTORY, MigrationHistory, migrate
from services.runtime.settings import Settings


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
    engine = make_engine(settings.resolved_database_url(), echo=settings.database_echo)
    fleet = build_fleet(settings, engine, make_sessions(engine))
    try:
        await migrate(engine, *histories)
        await fleet.prepare()
    finally:
        await fleet.close()
        await engine.dispose()


def main(argv: Sequence[str] | None = None) -> int:
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
