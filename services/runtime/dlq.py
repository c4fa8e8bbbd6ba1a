"""Dead letters: list them, replay them at most once, count those waiting.

A dead letter is a record of ``<topic>.dlq`` written by the delivery wrapper (``delivery.py``):
the original value and key, the original headers, and ``dlq_*`` headers saying where it came
from and why it failed.

Replaying re-publishes the original message (value, key, headers minus ``dlq_*``, to its
original partition) with a ``cardflow_replay_of`` header naming the dead letter. Which dead
letters were replayed is kept in the compacted topic ``cardflow.dlq.replayed.v1``: one record
per dead letter, keyed by its ref ``<dlq topic>:<partition>:<offset>``. The copies and their
ledger records are written in one Kafka transaction, so both are there or neither: a crash
mid-replay replays nothing and the next run does it all. The transactional id is fixed (per
topic prefix) and the ledger is read only after the producer's ``init_transactions``, which
fences a replay running elsewhere and aborts its open transaction: two replays at once cannot
both publish one dead letter. A copy that fails again becomes a new dead letter (new ref).

Replay goes to the topic, so every consumer group of it sees the message again; those that
handled the event already skip it (the inbox dedupes by event id).

Two halves: pure functions (parse a record, the ledger, select, a replay's headers) and the
Kafka I/O around them (``read_dead_letters``, ``replay``, ``export_waiting``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pydantic import ValidationError

from contracts import Envelope
from contracts.topics import DLQ_SUFFIX
from services.runtime.broker import kafka_client_options
from services.runtime.delivery import DEAD_LETTER_HEADER_PREFIX
from services.runtime.metrics import DEAD_LETTERS_WAITING
from services.runtime.periodic import refresh_every
from services.runtime.settings import Settings
from services.runtime.topics import ensure_topics

log = logging.getLogger(__name__)

LEDGER_TOPIC = "cardflow.dlq.replayed.v1"
"""Logical name (the topic prefix is added): which dead letters were replayed."""
REPLAY_TRANSACTIONAL_ID = "cardflow.dlq.replay"
REPLAY_OF_HEADER = "cardflow_replay_of"
"""On a replayed message: the ref of the dead letter it came from; kept on its next dead
letter if it fails again, so ``list`` shows the lineage."""
GROUPS_PER_TRANSACTION = 100
"""Keeps one replay transaction far inside the broker's transaction timeout."""
READ_STALL_S = 30.0

T = TypeVar("T")


# ============================================================================================
# Pure


@dataclass(frozen=True, slots=True)
class Replay:
    """A ledger record: when a dead letter was replayed and where its copy went."""

    at: str
    topic: str
    partition: int | None
    offset: int | None


@dataclass(frozen=True, slots=True)
class DeadLetterRecord:
    """One record of a ``.dlq`` topic, its headers parsed. Topic names are physical (with
    the prefix), as Kafka tools show them."""

    dlq_topic: str
    partition: int
    offset: int
    original_topic: str
    original_partition: int | None
    original_offset: int | None
    consumer: str
    code: str
    message: str
    attempts: int | None
    time: str
    event_id: str | None
    event_type: str | None
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]
    replay_of: str | None = None
    replayed: Replay | None = None

    @property
    def ref(self) -> str:
        """The dead letter's own id: its place in its ``.dlq`` topic."""
        return f"{self.dlq_topic}:{self.partition}:{self.offset}"

    @property
    def waiting(self) -> bool:
        return self.replayed is None

    def as_json(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "dlq_topic": self.dlq_topic,
            "partition": self.partition,
            "offset": self.offset,
            "original_topic": self.original_topic,
            "original_partition": self.original_partition,
            "original_offset": self.original_offset,
            "consumer": self.consumer,
            "code": self.code,
            "message": self.message,
            "attempts": self.attempts,
            "time": self.time,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "key": _text(self.key),
            "value_preview": _text(self.value[:300]),
            "replay_of": self.replay_of,
            "waiting": self.waiting,
            "replayed": None
            if self.replayed is None
            else {
                "at": self.replayed.at,
                "topic": self.replayed.topic,
                "partition": self.replayed.partition,
                "offset": self.replayed.offset,
            },
        }


def _text(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode("utf-8", errors="replace")


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def parse_dead_letter(
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: Iterable[tuple[str, bytes | None]],
    timestamp_ms: int | None = None,
) -> DeadLetterRecord:
    """A ``.dlq`` record as the delivery wrapper wrote it; tolerant of records written by
    anything else (missing headers fall back to what the topic name and timestamp say)."""
    kept = tuple((name, raw or b"") for name, raw in headers)
    text = {name: raw.decode("utf-8", errors="replace") for name, raw in kept}
    event_id = event_type = None
    if value:
        try:
            envelope = Envelope.from_bytes(value)
        except ValidationError:
            pass
        else:
            event_id, event_type = envelope.id, envelope.type
    when = text.get("dlq_time")
    if not when and timestamp_ms is not None:
        when = datetime.fromtimestamp(timestamp_ms / 1000, UTC).isoformat()
    return DeadLetterRecord(
        dlq_topic=topic,
        partition=partition,
        offset=offset,
        original_topic=text.get("dlq_original_topic") or topic.removesuffix(DLQ_SUFFIX),
        original_partition=_int(text.get("dlq_original_partition")),
        original_offset=_int(text.get("dlq_original_offset")),
        consumer=text.get("dlq_consumer", ""),
        code=text.get("dlq_error_code", "unknown"),
        message=text.get("dlq_error_message", ""),
        attempts=_int(text.get("dlq_attempts")),
        time=when or "",
        event_id=event_id,
        event_type=event_type,
        key=key,
        value=value or b"",
        headers=kept,
        replay_of=text.get(REPLAY_OF_HEADER),
    )


def ledger_record(letter: DeadLetterRecord, replay: Replay) -> tuple[bytes, bytes]:
    """(key, value) of the ledger record saying ``letter`` was replayed."""
    value = {
        "ref": letter.ref,
        "event_id": letter.event_id,
        "replayed_at": replay.at,
        "replayed_to": {
            "topic": replay.topic,
            "partition": replay.partition,
            "offset": replay.offset,
        },
    }
    return letter.ref.encode(), json.dumps(value).encode()


def parse_ledger(records: Iterable[tuple[bytes | None, bytes | None]]) -> dict[str, Replay]:
    """The ledger's (key, value) records in offset order → ref → its replay. The last record
    of a key wins (compaction keeps only it anyway); a tombstone forgets the replay. A value
    that does not parse still counts as replayed: never replay twice on a doubt."""
    ledger: dict[str, Replay] = {}
    for key, value in records:
        if not key:
            continue
        ref = key.decode("utf-8", errors="replace")
        if value is None:
            ledger.pop(ref, None)
            continue
        try:
            body = json.loads(value)
            to = body.get("replayed_to") or {}
            ledger[ref] = Replay(
                at=str(body.get("replayed_at") or ""),
                topic=str(to.get("topic") or ""),
                partition=to.get("partition"),
                offset=to.get("offset"),
            )
        except (ValueError, AttributeError):
            ledger[ref] = Replay(at="", topic="", partition=None, offset=None)
    return ledger


def with_replays(
    letters: Iterable[DeadLetterRecord], ledger: dict[str, Replay]
) -> list[DeadLetterRecord]:
    return [replace(letter, replayed=ledger.get(letter.ref)) for letter in letters]


def topic_candidates(wanted: str, prefix: str) -> set[str]:
    """The physical original topics ``--topic`` may name: given with or without the topic
    prefix, as the topic or as its ``.dlq``."""
    base = wanted.removesuffix(DLQ_SUFFIX)
    return {base, prefix + base}


def dlq_topic_selected(dlq_topic: str, wanted: Sequence[str], prefix: str) -> bool:
    """Whether a ``.dlq`` topic is among those asked for (all when none are asked for)."""
    if not dlq_topic.startswith(prefix) or not dlq_topic.endswith(DLQ_SUFFIX):
        return False
    if not wanted:
        return True
    original = dlq_topic.removesuffix(DLQ_SUFFIX)
    return any(original in topic_candidates(w, prefix) for w in wanted)


def replay_headers(letter: DeadLetterRecord) -> list[tuple[str, bytes]]:
    """The original headers without the dead-letter ones, plus where the copy came from."""
    kept = [
        (name, raw)
        for name, raw in letter.headers
        if not name.startswith(DEAD_LETTER_HEADER_PREFIX) and name != REPLAY_OF_HEADER
    ]
    return [*kept, (REPLAY_OF_HEADER, letter.ref.encode())]


def _origin(letter: DeadLetterRecord) -> tuple[object, ...]:
    """What makes two dead letters the same message: the event (two consumer groups of one
    topic, or a dead letter written twice) or, for a message that is no envelope, its place."""
    if letter.event_id:
        return (letter.original_topic, "event", letter.event_id)
    if letter.original_offset is not None:
        return (letter.original_topic, letter.original_partition, letter.original_offset)
    return ("ref", letter.ref)


@dataclass(frozen=True, slots=True)
class ReplayPlan:
    groups: tuple[tuple[DeadLetterRecord, ...], ...]
    """Each group is one message, published once; every dead letter of it is marked."""
    already_replayed: tuple[DeadLetterRecord, ...]
    unknown_ids: tuple[str, ...]
    """Asked-for ids no dead letter has; a plan with any replays nothing."""


def plan_replay(
    letters: Sequence[DeadLetterRecord],
    *,
    topics: Sequence[str] = (),
    ids: Sequence[str] = (),
    prefix: str = "",
) -> ReplayPlan:
    """The dead letters ``replay --topic``/``--id`` means. An id is an event id or a dead
    letter's ref (for messages that are no envelope). Already replayed ones are left out."""
    if topics:
        wanted = set().union(*(topic_candidates(t, prefix) for t in topics))
        chosen = [letter for letter in letters if letter.original_topic in wanted]
        unknown: list[str] = []
    else:
        asked = set(ids)
        chosen = [letter for letter in letters if {letter.event_id, letter.ref} & asked]
        found = {letter.event_id for letter in chosen} | {letter.ref for letter in chosen}
        unknown = [i for i in dict.fromkeys(ids) if i not in found]
    groups: dict[tuple[object, ...], list[DeadLetterRecord]] = {}
    for letter in chosen:
        if letter.waiting:
            groups.setdefault(_origin(letter), []).append(letter)
    return ReplayPlan(
        groups=tuple(tuple(group) for group in groups.values()),
        already_replayed=tuple(letter for letter in chosen if not letter.waiting),
        unknown_ids=tuple(unknown),
    )


@dataclass(frozen=True, slots=True)
class DeadLetters:
    """What a scan found: the ``.dlq`` topics read and their records, oldest first."""

    topics: tuple[str, ...]
    letters: tuple[DeadLetterRecord, ...]

    def waiting_by_topic(self) -> dict[str, int]:
        """Dead letters not replayed yet, by original topic; every topic read is there, with
        0 when none wait (so a gauge falls back to 0 after a replay)."""
        counts = {topic.removesuffix(DLQ_SUFFIX): 0 for topic in self.topics}
        for letter in self.letters:
            if letter.waiting:
                counts[letter.original_topic] = counts.get(letter.original_topic, 0) + 1
        return counts


def set_waiting_gauge(counts: dict[str, int], exported: set[str]) -> set[str]:
    """Sets the gauge from a scan; removes the topics an earlier scan exported and this one
    did not find (deleted). Returns what is exported now."""
    for topic, count in counts.items():
        DEAD_LETTERS_WAITING.labels(topic=topic).set(count)
    for gone in exported - counts.keys():
        DEAD_LETTERS_WAITING.remove(gone)
    return set(counts)


# ============================================================================================
# Kafka I/O


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
