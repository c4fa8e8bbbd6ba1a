"""The outbox relay: publishes committed outbox rows to Kafka exactly once.

One relay per service database is active at a time (a PostgreSQL advisory lock, or a file
lock beside a SQLite database). It publishes each batch in a Kafka transaction under a
transactional id fixed per service, so a new relay's ``init_transactions`` fences its
predecessor and aborts whatever that one left open. The same transaction writes the batch's
(sequence number, event id) pairs to the service's ledger topic. If a relay dies after the
Kafka commit but before it marks the rows published, its successor reads the ledger's last
record and marks those rows instead of publishing them again. Rows are matched by sequence
number and event id, so a ledger that outlived its database never marks a stranger's row.
No duplicate reaches a read_committed consumer, and no event is lost: a row is only marked
after its batch committed.

This is the source side of Kafka's exactly-once, as Kafka Connect's exactly-once sources do
with their offsets topic. Consumers still dedupe by event id (the inbox), so the design
stays correct for read_uncommitted consumers and for replays.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.runtime import metrics, outbox
from services.runtime.backoff import full_jitter, sleep_or_stop
from services.runtime.broker import kafka_client_options
from services.runtime.settings import Settings
from services.runtime.topics import ensure_topics

log = logging.getLogger(__name__)

LEDGER_TOPIC_PREFIX = "cardflow.internal.outbox-ledger."


def ledger_topic(service: str) -> str:
    return LEDGER_TOPIC_PREFIX + service


def transactional_id(service: str) -> str:
    return f"cardflow.outbox.{service}"


class OutboxRelay:
    def __init__(
        self,
        settings: Settings,
        engine: AsyncEngine,
        sessions: async_sessionmaker[AsyncSession],
    ) -> None:
        self._settings = settings
        self._engine = engine
        self._sessions = sessions
        self._service = settings.service_name
        self._wake = asyncio.Event()
        self.published = 0
        self.is_leader = False

    def notify(self) -> None:
        """Called after a transaction that enqueued events: publish now, not at the next poll."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Relays until ``stop`` is set; survives broker outages by backing off and retrying."""
        attempt = 0
        while not stop.is_set():
            try:
                async with self._leadership(stop):
                    if stop.is_set():
                        return
                    self.is_leader = True
                    await self._relay_as_leader(stop)
                    attempt = 0
            except asyncio.CancelledError:
                raise
            except Exception:
                attempt += 1
                delay = full_jitter(attempt, self._settings.handler_retry_base_s, 10.0)
                log.warning(
                    "outbox relay failed; retrying",
                    exc_info=True,
                    extra={"fields": {"retry_in_s": round(delay, 2)}},
                )
                await sleep_or_stop(stop, delay)
            finally:
                self.is_leader = False

    async def _relay_as_leader(self, stop: asyncio.Event) -> None:
        await ensure_topics(
            self._settings,
            [ledger_topic(self._service)],
            partitions=1,
            config={"cleanup.policy": "compact", "segment.bytes": str(1024 * 1024)},
        )
        producer = AIOKafkaProducer(
            **kafka_client_options(self._settings),
            client_id=f"{self._service}-outbox",
            transactional_id=self._settings.topic(transactional_id(self._service)),
            enable_idempotence=True,
            acks="all",
            transaction_timeout_ms=30_000,
        )
        # start() runs init_transactions: fences a previous relay and aborts its open batch.
        await producer.start()
        try:
            await self._recover(producer)
            while not stop.is_set():
                sent = await self._publish_batch(producer)
                if sent == 0:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(
                            _first_of(self._wake, stop), self._settings.outbox_poll_interval_s
                        )
        finally:
            await producer.stop()

    async def _recover(self, producer: AIOKafkaProducer) -> None:
        """Marks the last committed batch published, in case its relay died before doing so."""
        last = await self._read_last_ledger_record()
        if last:
            async with self._sessions.begin() as session:
                await outbox.mark_published_exact(session, last)
            log.info("outbox relay recovered", extra={"fields": {"last_batch_size": len(last)}})

    async def _publish_batch(self, producer: AIOKafkaProducer) -> int:
        # Three short steps, no database transaction held across the Kafka one: on SQLite a
        # transaction holds the file's write lock, and a slow broker must not stall every
        # handler and heartbeat of the service. Only the leader publishes, so nobody else
        # can take these rows meanwhile.
        async with self._sessions.begin() as session:
            batch = await outbox.lock_pending(session, self._settings.outbox_batch_size)
        if not batch:
            return 0
        seqs = [row.seq for row in batch]
        async with producer.transaction():
            sent = [
                await producer.send(
                    self._settings.topic(row.topic),
                    value=row.payload,
                    key=row.key.encode(),
                    headers=[(k, v.encode()) for k, v in row.headers.items()],
                )
                for row in batch
            ]
            sent.append(
                await producer.send(
                    self._settings.topic(ledger_topic(self._service)),
                    key=self._service.encode(),
                    value=json.dumps({"events": [[r.seq, r.event_id] for r in batch]}).encode(),
                )
            )
            # Every record acknowledged inside the transaction before it commits: a failed
            # send aborts the batch here rather than at commit.
            await asyncio.gather(*sent)
            await self._before_kafka_commit(seqs)
        # Committed in Kafka; a crash from here to the DB commit is what _recover repairs.
        await self._after_kafka_commit(seqs)
        async with self._sessions.begin() as session:
            await outbox.mark_published(session, seqs)
        self.published += len(batch)
        metrics.OUTBOX_PUBLISHED.inc(len(batch))
        return len(batch)

    async def _before_kafka_commit(self, seqs: list[int]) -> None:
        """Seam for fault-injection tests: a crash here leaves an open, then aborted, batch."""

    async def _after_kafka_commit(self, seqs: list[int]) -> None:
        """Seam for fault-injection tests: a crash here leaves a published, unmarked batch."""

    async def _read_last_ledger_record(self) -> list[tuple[int, str]]:
        topic = self._settings.topic(ledger_topic(self._service))
        partition = TopicPartition(topic, 0)
        consumer = AIOKafkaConsumer(
            **kafka_client_options(self._settings),
            client_id=f"{self._service}-outbox-recovery",
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            consumer.assign([partition])
            # An explicit seek: seek_to_beginning() is lazy and can lose a race with the
            # position reset that assign() starts.
            begin = (await consumer.beginning_offsets([partition]))[partition]
            end = (await consumer.end_offsets([partition]))[partition]
            consumer.seek(partition, begin)
            last: list[tuple[int, str]] = []
            key = self._service.encode()
            while await consumer.position(partition) < end:
                records = await consumer.getmany(partition, timeout_ms=1000)
                for record in records.get(partition, []):
                    if record.key == key and record.value:
                        events = json.loads(record.value)["events"]
                        last = [(int(seq), str(event_id)) for seq, event_id in events]
            return last
        finally:
            await consumer.stop()

    @contextlib.asynccontextmanager
    async def _leadership(self, stop: asyncio.Event) -> AsyncIterator[None]:
        url = make_url(str(self._engine.url))
        if url.get_backend_name() == "postgresql":
            async with self._pg_leadership(stop):
                yield
        else:
            lock_path = Path(url.database or "cardflow").with_suffix(".relay.lock")
            async with _file_leadership(lock_path, stop):
                yield

    @contextlib.asynccontextmanager
    async def _pg_leadership(self, stop: asyncio.Event) -> AsyncIterator[None]:
        lock_id = zlib.crc32(f"cardflow-outbox-{self._service}".encode())
        async with self._engine.connect() as conn:
            while not stop.is_set():
                got = (
                    await conn.execute(text("SELECT pg_try_advisory_lock(:id)"), {"id": lock_id})
                ).scalar_one()
                await conn.commit()
                if got:
                    break
                await sleep_or_stop(stop, 1.0)
            try:
                yield
            finally:
                with contextlib.suppress(Exception):
                    await conn.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": lock_id})
                    await conn.commit()


@contextlib.asynccontextmanager
async def _file_leadership(path: Path, stop: asyncio.Event) -> AsyncIterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        while not stop.is_set():
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await sleep_or_stop(stop, 1.0)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


async def _first_of(*events: asyncio.Event) -> Any:
    tasks = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
