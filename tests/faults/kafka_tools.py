"""What the fault tests ask the broker directly: a stack's consumer groups and their
members, committed offsets, whole topics, and producing raw records (poison, replays).

Synchronous wrappers (the fault tests are plain functions driving processes); each opens
one client per call, so a poll loop costs one connection per round, not one per group."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.protocol.admin import DescribeGroupsRequest_v3, DescribeGroupsResponse_v3
from aiokafka.protocol.api import Request

from contracts.topics import DLQ_SUFFIX
from tests.support.infra import run_sync

Record = ConsumerRecord[bytes, bytes]
Headers = list[tuple[str, bytes]]


def _admin(bootstrap: str) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)


def topic_groups(bootstrap: str, prefix: str) -> dict[str, list[str]]:
    """Logical topic -> the consumer groups of the stack (``prefix``) that read it. Groups are
    named ``<prefix><service>.<topic>`` (services.runtime.delivery), so a consumer added
    later (e.g. of runs.control) is found without a list here being updated."""

    async def list_groups() -> list[str]:
        admin = _admin(bootstrap)
        await admin.start()
        try:
            return [str(g[0]) for g in await admin.list_consumer_groups()]
        finally:
            await admin.close()

    found: dict[str, list[str]] = {}
    for group in run_sync(list_groups):
        if group.startswith(prefix):
            _service, _, topic = group[len(prefix) :].partition(".")
            found.setdefault(topic, []).append(group)
    return {topic: sorted(groups) for topic, groups in sorted(found.items())}


class _DescribeGroupsV3(DescribeGroupsRequest_v3):
    # aiokafka (0.12) pairs the v3 request with the v2 response, which lacks v3's
    # authorized_operations field, so decoding a Kafka 4 answer (v3 at least) underruns.
    RESPONSE_TYPE = DescribeGroupsResponse_v3


class _DescribeGroups(Request[_DescribeGroupsV3]):
    API_KEY = 15

    def __init__(self, groups: list[str]) -> None:
        self._groups = groups

    def build(self, request_struct_class: type[_DescribeGroupsV3]) -> _DescribeGroupsV3:
        return request_struct_class(self._groups, False)


def group_members(bootstrap: str, groups: Iterable[str]) -> dict[str, tuple[str, frozenset[str]]]:
    """Group -> (state, member ids). A member that leaves its group (its poll interval
    passed) rejoins under a new member id, so equal snapshots mean no rebalance between."""
    wanted = list(groups)

    async def describe() -> dict[str, tuple[str, frozenset[str]]]:
        admin = _admin(bootstrap)
        await admin.start()
        try:
            result = {}
            for group_id in wanted:
                node = await admin.find_coordinator(group_id)
                response = await admin._client.send(node, _DescribeGroups([group_id]))
                for group in response.groups:
                    # (error_code, group, state, protocol_type, protocol, members, ops)
                    result[str(group[1])] = (str(group[2]), frozenset(m[0] for m in group[5]))
            return result
        finally:
            await admin.close()

    return run_sync(describe)


def committed(bootstrap: str, groups: Iterable[str]) -> dict[str, dict[tuple[str, int], int]]:
    """Group -> (topic, partition) -> committed offset."""
    wanted = list(groups)

    async def offsets() -> dict[str, dict[tuple[str, int], int]]:
        admin = _admin(bootstrap)
        await admin.start()
        try:
            result = {}
            for group in wanted:
                found = await admin.list_consumer_group_offsets(group)
                result[group] = {
                    (tp.topic, tp.partition): meta.offset for tp, meta in found.items()
                }
            return result
        finally:
            await admin.close()

    return run_sync(offsets)


@dataclass(frozen=True)
class Written:
    topic: str
    partition: int
    offset: int


def produce(
    bootstrap: str, records: Iterable[tuple[str, bytes | None, bytes, Headers]]
) -> list[Written]:
    """Each (topic, key, value, headers) sent and acknowledged, in order; where it landed."""
    items = list(records)

    async def send_all() -> list[Written]:
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, enable_idempotence=True, acks="all"
        )
        await producer.start()
        try:
            sent = [
                await producer.send(topic, value, key=key, headers=headers or None)
                for topic, key, value, headers in items
            ]
            written = []
            for (topic, *_), future in zip(items, sent, strict=True):
                meta = await future
                written.append(Written(topic, meta.partition, meta.offset))
            return written
        finally:
            await producer.stop()

    return run_sync(send_all)


def read_topics(bootstrap: str, topics: Iterable[str]) -> dict[str, list[Record]]:
    """Every committed record of each topic now (up to its end), with one consumer and no
    group."""
    names = list(topics)

    async def read() -> dict[str, list[Record]]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            await consumer._client.force_metadata_update()
            partitions = [
                TopicPartition(t, p)
                for t in names
                for p in sorted(consumer.partitions_for_topic(t) or ())
            ]
            consumer.assign(partitions)
            begins = await consumer.beginning_offsets(partitions)
            ends = await consumer.end_offsets(partitions)
            for tp in partitions:
                # Explicit: seek_to_beginning() is lazy and races the reset assign() starts.
                consumer.seek(tp, begins[tp])
            records: dict[str, list[Record]] = {t: [] for t in names}
            for tp in partitions:
                while await consumer.position(tp) < ends[tp]:
                    batch = await consumer.getmany(tp, timeout_ms=1000)
                    records[tp.topic].extend(batch.get(tp, []))
            return records
        finally:
            await consumer.stop()

    return run_sync(read)


def stack_topics(bootstrap: str, prefix: str) -> list[str]:
    """The stack's event topics (physical names): not dead letters, not internal ones."""

    async def names() -> list[str]:
        admin = _admin(bootstrap)
        await admin.start()
        try:
            return sorted(await admin.list_topics())
        finally:
            await admin.close()

    return [
        t
        for t in run_sync(names)
        if t.startswith(prefix) and not t.endswith(DLQ_SUFFIX) and ".internal." not in t
    ]


def committed_past(bootstrap: str, groups: dict[str, list[str]], written: list[Written]) -> bool:
    """Whether every group reading a topic (``groups``: physical topic -> groups) committed
    past each record ``written`` to it, i.e. consumed it and moved on."""
    last: dict[tuple[str, int], int] = {}
    for w in written:
        last[(w.topic, w.partition)] = max(last.get((w.topic, w.partition), -1), w.offset)
    readers = {g for topic, _ in last for g in groups.get(topic, [])}
    offsets = committed(bootstrap, readers)
    return all(
        offsets[group].get(topic_partition, -1) > offset
        for topic_partition, offset in last.items()
        for group in groups.get(topic_partition[0], [])
    )
