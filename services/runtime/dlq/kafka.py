"""Dead letters, Kafka I/O: read every ``.dlq`` topic and the ledger, replay in one
transaction per chunk, and export the count of those waiting as a gauge."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from services.runtime.broker import kafka_client_options
from services.runtime.dlq.records import (
    LEDGER_TOPIC,
    DeadLetterRecord,
    DeadLetters,
    Replay,
    ReplayPlan,
    dlq_topic_selected,
    ledger_record,
    parse_dead_letter,
    parse_ledger,
    plan_replay,
    replay_headers,
    with_replays,
)
from services.runtime.metrics import DEAD_LETTERS_WAITING
from services.runtime.periodic import refresh_every
from services.runtime.settings import Settings
from services.runtime.topics import ensure_topics

log = logging.getLogger(__name__)

REPLAY_TRANSACTIONAL_ID = "cardflow.dlq.replay"
GROUPS_PER_TRANSACTION = 100
"""Keeps one replay transaction far inside the broker's transaction timeout."""
READ_STALL_S = 30.0


def set_waiting_gauge(counts: dict[str, int], exported: set[str]) -> set[str]:
    """Sets the gauge from a scan; removes the topics an earlier scan exported and this one
    did not find (deleted). Returns what is exported now."""
    for topic, count in counts.items():
        DEAD_LETTERS_WAITING.labels(topic=topic).set(count)
    for gone in exported - counts.keys():
        DEAD_LETTERS_WAITING.remove(gone)
    return set(counts)


def _consumer(settings: Settings, purpose: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        **kafka_client_options(settings),
        client_id=f"{settings.service_name}-{purpose}",
        enable_auto_commit=False,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
    )


async def _read_to_end(consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> list[Any]:
    """Every record of the partitions up to their end now, without joining a group."""
    if not partitions:
        return []
    consumer.assign(partitions)
    begins = await consumer.beginning_offsets(partitions)
    ends = await consumer.end_offsets(partitions)
    for tp in partitions:
        # Explicit: seek_to_beginning() is lazy and races the reset assign() starts.
        consumer.seek(tp, begins[tp])
    pending = [tp for tp in partitions if begins[tp] < ends[tp]]
    records: list[Any] = []
    progress_at = time.monotonic()
    while pending:
        batch = await consumer.getmany(*pending, timeout_ms=1000)
        for tp, got in batch.items():
            records.extend(r for r in got if r.offset < ends[tp])
            progress_at = time.monotonic() if got else progress_at
        pending = [tp for tp in pending if await consumer.position(tp) < ends[tp]]
        if pending and time.monotonic() - progress_at > READ_STALL_S:
            raise TimeoutError(f"reading {pending[0].topic} stalled for {READ_STALL_S:.0f} s")
    return records


async def _scan(
    consumer: AIOKafkaConsumer, settings: Settings, topics: Sequence[str]
) -> DeadLetters:
    prefix = settings.kafka_topic_prefix
    # The client's own metadata: consumer.topics() fetches the same but keeps the partitions
    # to itself, and partitions_for_topic() knows only topics the consumer already uses.
    cluster = await consumer._client.fetch_all_metadata()
    existing = cluster.topics()
    dlq_topics = sorted(t for t in existing if dlq_topic_selected(t, topics, prefix))
    ledger_topic = settings.topic(LEDGER_TOPIC)
    partitions = [
        TopicPartition(topic, p)
        for topic in [*dlq_topics, *([ledger_topic] if ledger_topic in existing else [])]
        for p in sorted(cluster.partitions_for_topic(topic) or ())
    ]
    records = await _read_to_end(consumer, partitions)
    ledger = parse_ledger(
        (r.key, r.value) for r in sorted(records, key=lambda r: r.offset) if r.topic == ledger_topic
    )
    letters = [
        parse_dead_letter(r.topic, r.partition, r.offset, r.key, r.value, r.headers, r.timestamp)
        for r in sorted(records, key=lambda r: (r.timestamp, r.topic, r.partition, r.offset))
        if r.topic != ledger_topic
    ]
    return DeadLetters(tuple(dlq_topics), tuple(with_replays(letters, ledger)))


async def read_dead_letters(settings: Settings, topics: Sequence[str] = ()) -> DeadLetters:
    """Every dead letter of the ``.dlq`` topics under the topic prefix (or of ``topics``:
    original or ``.dlq`` names, with or without the prefix), each marked replayed or not."""
    consumer = _consumer(settings, "dlq-list")
    try:
        await consumer.start()
        return await _scan(consumer, settings, topics)
    finally:
        await consumer.stop()


@dataclass(frozen=True, slots=True)
class ReplayResult:
    plan: ReplayPlan
    replays: tuple[Replay, ...]
    """One per group of the plan, in its order; empty on a dry run or with unknown ids."""
    dry_run: bool


async def replay(
    settings: Settings,
    *,
    topics: Sequence[str] = (),
    ids: Sequence[str] = (),
    dry_run: bool = False,
) -> ReplayResult:
    """Replays the waiting dead letters of ``topics`` or with ``ids`` (see the module's
    docstring for why each is published at most once). A dry run reads and publishes nothing."""
    if not topics and not ids:
        raise ValueError("replay needs topics or ids")
    if dry_run:
        found = await read_dead_letters(settings, topics)
        plan = plan_replay(
            found.letters, topics=topics, ids=ids, prefix=settings.kafka_topic_prefix
        )
        return ReplayResult(plan, (), dry_run=True)
    await ensure_topics(
        settings,
        [LEDGER_TOPIC],
        partitions=1,
        config={"cleanup.policy": "compact", "segment.bytes": str(1024 * 1024)},
    )
    producer = AIOKafkaProducer(
        **kafka_client_options(settings),
        client_id=f"{settings.service_name}-dlq-replay",
        transactional_id=settings.topic(REPLAY_TRANSACTIONAL_ID),
        enable_idempotence=True,
        acks="all",
        transaction_timeout_ms=60_000,
    )
    try:
        # start() runs init_transactions: from here no other replay has a transaction open,
        # so the ledger read next is the whole truth.
        await producer.start()
        found = await read_dead_letters(settings, topics)
        plan = plan_replay(
            found.letters, topics=topics, ids=ids, prefix=settings.kafka_topic_prefix
        )
        if plan.unknown_ids:
            return ReplayResult(plan, (), dry_run=False)
        replays: list[Replay] = []
        for start in range(0, len(plan.groups), GROUPS_PER_TRANSACTION):
            chunk = plan.groups[start : start + GROUPS_PER_TRANSACTION]
            replays += await _replay_chunk(producer, settings, chunk)
        return ReplayResult(plan, tuple(replays), dry_run=False)
    finally:
        await producer.stop()


async def _replay_chunk(
    producer: AIOKafkaProducer,
    settings: Settings,
    groups: Sequence[tuple[DeadLetterRecord, ...]],
) -> list[Replay]:
    async with producer.transaction():
        sent = []
        for group in groups:
            first = group[0]
            sent.append(
                await producer.send(
                    first.original_topic,
                    value=first.value,
                    key=first.key,
                    # The original partition: the copy keeps its key's place in the order.
                    partition=first.original_partition,
                    headers=replay_headers(first),
                )
            )
        metadata = await asyncio.gather(*sent)
        now = datetime.now(UTC).isoformat()
        replays = [Replay(now, m.topic, m.partition, m.offset) for m in metadata]
        marks = []
        for group, done in zip(groups, replays, strict=True):
            for letter in group:
                key, value = ledger_record(letter, done)
                marks.append(
                    await producer.send(settings.topic(LEDGER_TOPIC), key=key, value=value)
                )
        # Every record acknowledged before the commit: a failed send aborts the chunk here.
        await asyncio.gather(*marks)
    log.info("replayed dead letters", extra={"fields": {"messages": len(groups)}})
    return replays


async def count_waiting(settings: Settings) -> dict[str, int]:
    return (await read_dead_letters(settings)).waiting_by_topic()


async def export_waiting(settings: Settings, stop: asyncio.Event) -> None:
    """Background loop (the gateway's): keeps the ``cardflow_dead_letters_waiting`` gauge
    current by scanning the ``.dlq`` topics every ``dlq_waiting_interval_s``. A failed scan
    leaves the last values; a scan in progress is abandoned at shutdown."""
    exported: set[str] = set()
    await refresh_every(
        settings.dlq_waiting_interval_s,
        stop,
        lambda: count_waiting(settings),
        set_waiting_gauge,
        exported,
        what="counting dead letters",
    )
