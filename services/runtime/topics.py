"""Creating the topics a service needs, with the settings' partitions and replication."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from services.runtime.broker import kafka_client_options
from services.runtime.settings import Settings

log = logging.getLogger(__name__)


async def ensure_topics(
    settings: Settings,
    names: Iterable[str],
    *,
    partitions: int | None = None,
    config: Mapping[str, str] | None = None,
) -> None:
    """Creates each missing topic (logical names; the prefix is added here)."""
    admin = AIOKafkaAdminClient(
        **kafka_client_options(settings),
        client_id=f"{settings.service_name}-admin",
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [settings.topic(n) for n in dict.fromkeys(names)]
        missing = [n for n in wanted if n not in existing]
        if not missing:
            return
        new = [
            NewTopic(
                name=name,
                num_partitions=partitions or settings.kafka_topic_partitions,
                replication_factor=settings.kafka_replication_factor,
                topic_configs=dict(config or {}),
            )
            for name in missing
        ]
        try:
            response = await admin.create_topics(new)
        except TopicAlreadyExistsError:
            return
        for error in getattr(response, "topic_errors", ()):
            topic, code = error[0], error[1]
            if code not in (0, TopicAlreadyExistsError.errno):
                raise RuntimeError(f"could not create topic {topic}: error code {code}")
        log.info("created topics", extra={"fields": {"topics": missing}})
    finally:
        await admin.close()


WARMUP_TOPIC = "cardflow.internal.warmup"


async def warm_up_broker(bootstrap_servers: str, timeout_s: float = 90.0) -> None:
    """Makes a freshly formatted broker create its internal topics now.

    ``__transaction_state`` appears at the first transactional producer's start and
    ``__consumer_offsets`` at the first group's commit; left to the first services, their
    creation and leader elections happen while every service starts at once, and the first
    pipeline run was measured several times slower. Idempotent and cheap on a warm broker.
    """
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    async with asyncio.timeout(timeout_s):
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap_servers,
            transactional_id=WARMUP_TOPIC,
            enable_idempotence=True,
            acks="all",
        )
        await producer.start()
        try:
            async with producer.transaction():
                await producer.send_and_wait(WARMUP_TOPIC, b"warm")
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            WARMUP_TOPIC,
            bootstrap_servers=bootstrap_servers,
            group_id=WARMUP_TOPIC,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            isolation_level="read_committed",
        )
        await consumer.start()
        try:
            await consumer.getmany(timeout_ms=5000)
            await consumer.commit()
        finally:
            await consumer.stop()
