"""Builds the fleet gate on the shared database (or, with none configured, the service's
own: the ceilings then hold per service, which is right for one process and says so)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.runtime.db import make_engine, make_sessions
from services.runtime.fleet.gate import FleetGate
from services.runtime.fleet.policy import Limits
from services.runtime.migrate import MigrationHistory, migrate
from services.runtime.settings import Settings

FLEET_HISTORY = MigrationHistory("cardflow_fleet", Path(__file__).parent / "migrations")

# A slot outlives its call's deadline by this much before another replica may reclaim it.
SLOT_GRACE_S = 30.0


@dataclass
class Fleet:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    gate: FleetGate
    shared: bool
    """True when on a database of its own; False when on the service's."""

    async def prepare(self) -> None:
        await migrate(self.engine, FLEET_HISTORY)

    async def close(self) -> None:
        if self.shared:
            await self.engine.dispose()


def build_fleet(
    settings: Settings,
    service_engine: AsyncEngine,
    service_sessions: async_sessionmaker[AsyncSession],
) -> Fleet:
    url = settings.resolved_fleet_database_url()
    if url:
        engine = make_engine(url, echo=settings.database_echo)
        sessions, shared = make_sessions(engine), True
    else:
        engine, sessions, shared = service_engine, service_sessions, False
    gate = FleetGate(
        sessions,
        Limits(settings.llm_max_in_flight, settings.llm_tokens_per_minute),
        holder=f"{settings.service_name}:{settings.instance_id}",
        slot_ttl_s=settings.llm_timeout_s + SLOT_GRACE_S,
    )
    return Fleet(engine, sessions, gate, shared)
