"""A minimal service built only from the runtime, run as an OS process by delivery tests.

Its effect is deliberately not idempotent on its own (it inserts a row per handling), so a
double handling shows up as two rows unless the runtime's inbox prevents it. Each handled
event also emits one event through the outbox, so the relay is exercised too.

Fault points, chosen by environment, make the process announce that it reached the point
(by writing EFFECT_MARKER) and then hang until it is killed:
- EFFECT_PAUSE=in_handler: after the effect is written, before the transaction commits;
- EFFECT_PAUSE=before_offset_commit: after the transaction committed, before the offset;
- EFFECT_PAUSE=relay_before_kafka_commit / relay_after_kafka_commit: inside the relay;
- EFFECT_PAUSE=slow_<point>: announce, then take EFFECT_SLOW_S seconds there and go on.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from faststream.kafka.annotations import KafkaMessage
from sqlalchemy import Column, Integer, MetaData, String, Table

from services.runtime.broker import subscriber_options
from services.runtime.delivery import HandlerContext
from services.runtime.migrate import MigrationHistory
from services.runtime.relay import OutboxRelay
from services.runtime.service import build_service, run_service
from services.runtime.settings import Settings

metadata = MetaData()
effects = Table(
    "effects",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("item", String(100), nullable=False),
    Column("event_id", String(64), nullable=False),
)

MIGRATIONS = MigrationHistory("effect", Path(__file__).parent / "effect_migrations")
PAUSE = os.environ.get("EFFECT_PAUSE", "")
MARKER = Path(os.environ.get("EFFECT_MARKER", "/dev/null"))
OUT_TOPIC = os.environ.get("EFFECT_OUT_TOPIC", "")


async def hang_at(point: str) -> None:
    if point == PAUSE:
        MARKER.write_text(point)
        await asyncio.Event().wait()
    elif f"slow_{point}" == PAUSE:
        MARKER.write_text(point)
        await asyncio.sleep(float(os.environ.get("EFFECT_SLOW_S", "3")))


class PausingRelay(OutboxRelay):
    async def _before_kafka_commit(self, seqs: list[int]) -> None:
        await hang_at("relay_before_kafka_commit")

    async def _after_kafka_commit(self, seqs: list[int]) -> None:
        await hang_at("relay_after_kafka_commit")


async def handle(ctx: HandlerContext) -> None:
    item = str(ctx.envelope.data["item"])
    await ctx.session.execute(effects.insert().values(item=item, event_id=ctx.envelope.id))
    await ctx.emit(
        OUT_TOPIC,
        ctx.envelope.caused(
            type="cardflow.test.effect_done",
            schema_version=1,
            source="effect",
            key=item,
            data={"item": item},
        ),
    )
    await ctx.session.flush()
    await hang_at("in_handler")


async def main() -> None:
    settings = Settings()
    group, in_topic = settings.service_name, os.environ["EFFECT_IN_TOPIC"]
    service = build_service(settings, [MIGRATIONS], relay_class=PausingRelay)
    versions = {"cardflow.test.effect_requested": {1}}

    async def on_message(message: KafkaMessage) -> Any:
        await service.consumers.deliver(message.raw_message, group, handle, versions)
        await hang_at("before_offset_commit")

    service.broker.subscriber(in_topic, **subscriber_options(settings, group_id=group))(on_message)
    service.consumers.topics.append(in_topic)
    await run_service(service)


if __name__ == "__main__":
    asyncio.run(main())
