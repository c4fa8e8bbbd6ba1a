"""One effect service (tests/integration/apps/effect_service.py) as an OS process, with probes
on its database and topics: the delivery tests' rig."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from pathlib import Path

from sqlalchemy import func, select

from contracts import Envelope, root_envelope
from services.runtime.db import make_engine
from services.runtime.tables import inbox, outbox
from tests.integration.apps.effect_service import effects
from tests.support.kafka_io import committed_offsets, read_all
from tests.support.processes import ServiceProcess, service_env
from tests.support.wait import until

START_TIMEOUT = 60


def request(item: str) -> Envelope:
    return root_envelope(
        type="cardflow.test.effect_requested",
        schema_version=1,
        source="test",
        tenant_id="tenant-a",
        project_id="project-1",
        run_id=f"run-{item}",
        key=item,
        data={"item": item},
    )


class EffectRig:
    """One effect service (its own name, topics, group and database) and probes on it."""

    def __init__(self, bootstrap: str, database_url: str, tmp_path: Path) -> None:
        suffix = uuid.uuid4().hex[:10]
        self.bootstrap = bootstrap
        self.database_url = database_url
        self.name = f"effect-{suffix}"
        self.in_topic = f"test.effect.in.{suffix}"
        self.out_topic = f"test.effect.out.{suffix}"
        self.tmp = tmp_path
        self.runs = 0
        self.engine = make_engine(database_url)

    def process(
        self, pause: str = "", extra_env: Mapping[str, str] = {}
    ) -> tuple[ServiceProcess, Path]:
        self.runs += 1
        marker = self.tmp / f"reached-{self.runs}"
        env = service_env(
            name=self.name,
            bootstrap=self.bootstrap,
            database_url=self.database_url,
            state_dir=self.tmp / "state",
            extra={
                "EFFECT_IN_TOPIC": self.in_topic,
                "EFFECT_OUT_TOPIC": self.out_topic,
                "EFFECT_PAUSE": pause,
                "EFFECT_MARKER": str(marker),
                **extra_env,
            },
        )
        proc = ServiceProcess("tests.integration.apps.effect_service", env, self.tmp / "effect.log")
        return proc.start(), marker

    async def count(self, table, **where: str) -> int:  # type: ignore[no-untyped-def]
        statement = select(func.count()).select_from(table)
        for column, value in where.items():
            statement = statement.where(table.c[column] == value)
        async with self.engine.connect() as conn:
            return int((await conn.execute(statement)).scalar_one())

    async def committed(self) -> int:
        return (await committed_offsets(self.bootstrap, self.name)).get((self.in_topic, 0), 0)

    async def out_events(self, isolation_level: str = "read_committed") -> list[Envelope]:
        records = await read_all(self.bootstrap, self.out_topic, isolation_level=isolation_level)
        return [Envelope.from_bytes(r.value) for r in records]

    async def settled(self, proc: ServiceProcess) -> None:
        """Waits until the message is handled, its offset committed and its event published."""

        async def done() -> bool:
            assert proc.alive(), proc.log_tail()
            return (
                await self.committed() == 1
                and await self.count(outbox) == 1
                and await self._all_published()
            )

        await until(done, timeout=START_TIMEOUT, what="the message to be handled and committed")

    async def _all_published(self) -> bool:
        async with self.engine.connect() as conn:
            pending = await conn.execute(
                select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
            )
            return int(pending.scalar_one()) == 0

    async def assert_exactly_once(self, sent: Envelope) -> None:
        assert await self.count(effects) == 1, "the effect must happen exactly once"
        assert await self.count(effects, event_id=sent.id) == 1
        assert await self.count(inbox, event_id=sent.id) == 1
        events = await self.out_events()
        assert len(events) == 1, f"expected one published event, got {len(events)}"
        (event,) = events
        assert event.causation_id == sent.id
        assert event.correlation_id == sent.correlation_id == sent.run_id
        assert event.tenant_id == sent.tenant_id

    async def close(self) -> None:
        await self.engine.dispose()
