"""Consumer lag of the stack's consumer groups, read from the broker, as a metric.

The gateway runs :func:`export_lag`: lag is what KEDA and the alerts scale and page on, and it
must be measured from outside the consumers (a consumer that is dead or stuck reports
nothing about itself). Groups are named ``<prefix><service>.<topic>``
(services.runtime.delivery), so every group of this stack is found by its prefix.

Producers here write in Kafka transactions (the outbox relay), and each transaction ends
with a commit marker that takes an offset no consumer ever receives: a partition fully
consumed after a transaction shows a lag of 1. Alerts look at lag that grows, not at 1.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from services.runtime.broker import kafka_client_options
from services.runtime.metrics import CONSUMER_LAG
from services.runtime.periodic import refresh_every
from services.runtime.settings import Settings

log = logging.getLogger(__name__)

Lag = dict[tuple[str, str, int], int]
"""(group, topic, partition) -> messages behind."""


def lag_of(
    committed: Mapping[str, Mapping[tuple[str, int], int]], ends: Mapping[tuple[str, int], int]
) -> Lag:
    """Pure: each group's lag on each partition it has committed on. A partition whose end
    offset is unknown (deleted meanwhile) is left out; lag is never negative."""
    lag: Lag = {}
    for group, offsets in committed.items():
        for (topic, partition), offset in offsets.items():
            end = ends.get((topic, partition))
            if end is not None and offset >= 0:
                lag[(group, topic, partition)] = max(end - offset, 0)
    return lag


async def read_lag(settings: Settings) -> Lag:
    """The lag of every consumer group of this stack (its topic prefix), from the broker."""
    connection = kafka_client_options(settings)
    admin = AIOKafkaAdminClient(**connection, request_timeout_ms=10_000)
    await admin.start()
    try:
        groups = [
            str(g[0])
            for g in await admin.list_consumer_groups()
            if str(g[0]).startswith(settings.kafka_topic_prefix)
        ]
        committed: dict[str, dict[tuple[str, int], int]] = {}
        for group in groups:
            found = await admin.list_consumer_group_offsets(group)
            committed[group] = {(tp.topic, tp.partition): meta.offset for tp, meta in found.items()}
    finally:
        await admin.close()
    partitions = {tp for offsets in committed.values() for tp in offsets}
    if not partitions:
        return {}
    # read_committed: the end is the last stable offset, so records of a transaction still
    # open do not count as lag before anyone may read them.
    consumer = AIOKafkaConsumer(
        **connection, enable_auto_commit=False, isolation_level="read_committed"
    )
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(t, p) for t, p in partitions])
    finally:
        await consumer.stop()
    return lag_of(committed, {(tp.topic, tp.partition): offset for tp, offset in ends.items()})


def set_lag_gauge(lag: Lag, exported: set[tuple[str, str, int]]) -> set[tuple[str, str, int]]:
    """Sets the gauge to ``lag``; removes series of groups or partitions gone since."""
    for (group, topic, partition), behind in lag.items():
        CONSUMER_LAG.labels(group=group, topic=topic, partition=str(partition)).set(behind)
    for group, topic, partition in exported - set(lag):
        CONSUMER_LAG.remove(group, topic, str(partition))
    return set(lag)


async def export_lag(settings: Settings, stop: asyncio.Event) -> None:
    """Background loop: keeps ``cardflow_consumer_lag`` current every ``lag_interval_s``
    (0: off). A failed read keeps the last values."""
    exported: set[tuple[str, str, int]] = set()
    await refresh_every(
        settings.lag_interval_s,
        stop,
        lambda: read_lag(settings),
        set_lag_gauge,
        exported,
        what="reading consumer lag",
    )
