"""The test infrastructure gives real things: a broker that carries messages, a PostgreSQL
server, and a fresh private database per test on both SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support import infra

pytestmark = pytest.mark.integration


async def _produce(bootstrap: str, topic: str, payload: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, payload, key=b"k")
    finally:
        await producer.stop()


async def _first_record(bootstrap: str, topic: str, group: str) -> tuple[str, bytes, bytes]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        record = await asyncio.wait_for(consumer.getone(), 60)
    finally:
        await consumer.stop()
    assert record.key is not None
    assert record.value is not None
    return record.topic, record.key, record.value


async def _roundtrip(bootstrap: str, topic: str, group: str, payload: bytes) -> None:
    await _produce(bootstrap, topic, payload)
    assert await _first_record(bootstrap, topic, group) == (topic, b"k", payload)


async def test_kafka_carries_a_message(
    kafka_bootstrap: str,
    unique_topic: Callable[[str], str],
    unique_group: Callable[[str], str],
) -> None:
    await _roundtrip(kafka_bootstrap, unique_topic("infra"), unique_group("infra"), b"hello")


def test_unique_names_differ_and_are_kafka_safe(
    unique_topic: Callable[[str], str], unique_group: Callable[[str], str]
) -> None:
    names = {unique_topic("a b/c"), unique_topic("a b/c"), unique_group("a"), unique_group("a")}
    assert len(names) == 4
    assert all(re.fullmatch(r"[a-zA-Z0-9._-]{1,249}", name) for name in names)


async def test_postgres_is_a_real_server(postgres_url: str) -> None:
    assert postgres_url.startswith("postgresql+asyncpg://")
    engine = create_async_engine(postgres_url)
    try:
        async with engine.connect() as conn:
            version = (await conn.execute(text("SELECT version()"))).scalar_one()
    finally:
        await engine.dispose()
    assert version.startswith("PostgreSQL ")


# Run twice per backend: each run must find the database empty although the other run
# created the table, which proves the databases are fresh and private to a test.
@pytest.mark.parametrize("attempt", [1, 2])
async def test_database_url_is_fresh_and_private(
    database_url: str, request: pytest.FixtureRequest, attempt: int
) -> None:
    backend = request.node.callspec.params["database_url"]
    expected = {"sqlite": "sqlite+aiosqlite://", "postgresql": "postgresql+asyncpg://"}[backend]
    assert database_url.startswith(expected)
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            tables = await conn.run_sync(lambda sync: sync.dialect.get_table_names(sync))
            assert tables == []
            await conn.execute(text("CREATE TABLE probe (attempt INTEGER)"))
            await conn.execute(text("INSERT INTO probe VALUES (:a)"), {"a": attempt})
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT attempt FROM probe"))).scalars().all()
        assert rows == [attempt]
    finally:
        await engine.dispose()


@pytest.mark.slow
@pytest.mark.faults
async def test_local_kafka_survives_stop_and_kill(
    local_kafka: infra.LocalKafka,
    unique_topic: Callable[[str], str],
    unique_group: Callable[[str], str],
) -> None:
    """The helper fault-injection tests use: same address after a restart, data kept."""
    topic = unique_topic("restart")
    await _roundtrip(local_kafka.bootstrap, topic, unique_group("before"), b"one")
    first_pid = local_kafka.pid

    await asyncio.to_thread(local_kafka.stop)
    assert not local_kafka.is_running()
    assert await infra.kafka_probe(local_kafka.bootstrap, timeout_s=1.0) is not None

    local_kafka.start()
    await local_kafka.wait_ready_async()
    assert local_kafka.pid not in (None, first_pid)
    await asyncio.to_thread(local_kafka.kill)
    local_kafka.start()
    await local_kafka.wait_ready_async()

    # A new group reads from the start: the message written before both restarts is there,
    # and the broker takes new writes.
    await _produce(local_kafka.bootstrap, topic, b"two")
    first = await _first_record(local_kafka.bootstrap, topic, unique_group("after"))
    assert first == (topic, b"k", b"one")
