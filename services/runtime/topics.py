"""Creating the topics a service needs, with the settings' partitions and replication."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

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
        bootstrap_servers=settings.kafka_bootstrap_servers,
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
