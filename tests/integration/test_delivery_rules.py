"""Delivery rules of the runtime's consumer wrapper on a real broker and database, in process:
poison goes to the dead-letter topic and the consumer moves on; failures are retried with
backoff, then dead-lettered with an error code; a duplicate delivery changes nothing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from contracts import Envelope, dead_letter_topic, root_envelope
from services.runtime.delivery import HandlerContext, Rejected
from services.runtime.service import Service, build_service, prepare
from services.runtime.settings import Settings
from tests.support.kafka_io import committed_offsets, create_topics, produce, produce_raw, read_all
from tests.support.wait import until

pytestmark = pytest.mark.integration

TYPE = "cardflow.test.thing_requested"


def thing(item: str, **data: object) -> Envelope:
    return root_envelope(
        type=TYPE,
        schema_version=1,
        source="test",
        tenant_id="t1",
        key=item,
        data={"item": item, **data},
    )


@dataclass
class Recorder:
    """A handler whose behaviour each message chooses: ok, fail N times, or reject."""

    handled: list[str] = field(default_factory=list)
    attempts: dict[str, int] = field(default_factory=dict)

    async def __call__(self, ctx: HandlerContext) -> None:
        item = ctx.envelope.data["item"]
        self.attempts[item] = self.attempts.get(item, 0) + 1
        if ctx.envelope.data.get("reject"):
            raise Rejected("input_invalid", "this thing can never be done")
        if self.attempts[item] <= int(ctx.envelope.data.get("fail_times", 0)):
            raise ConnectionError("database blip")
        self.handled.append(item)


@dataclass
class Rig:
    service: Service
    topic: str
    recorder: Recorder
    bootstrap: str

    async def dead_letters(self) -> list[tuple[bytes, dict[str, str]]]:
        records = await read_all(self.bootstrap, dead_letter_topic(self.topic))
        return [(r.value, {k: v.decode() for k, v in r.headers}) for r in records]

    async def committed_is(self, expected: int) -> bool:
        return await self.committed() == expected

    async def committed(self) -> int:
        # The runtime's consumer group of a handler: one per (service, topic).
        group = f"{self.service.settings.service_name}.{self.topic}"
        offsets = await committed_offsets(self.bootstrap, group)
        return offsets.get((self.topic, 0), 0)


@pytest.fixture
async def rig(kafka_bootstrap: str, database_url: str, tmp_path: Path) -> AsyncIterator[Rig]:
    name = f"rules-{uuid.uuid4().hex[:8]}"
    topic = f"test.rules.{name}"
    await create_topics(kafka_bootstrap, topic, dead_letter_topic(topic))
    settings = Settings(
        service_name=name,
        kafka_bootstrap_servers=kafka_bootstrap,
        database_url=database_url,
        state_dir=tmp_path,
        handler_max_attempts=3,
        handler_retry_base_s=0.05,
        handler_retry_max_s=0.2,
        kafka_session_timeout_ms=6000,
    )
    service = build_service(settings)
    recorder = Recorder()
    service.consumers.register(topic, recorder, accepted_versions={TYPE: {1}})
    await prepare(service)
    await service.broker.start()
    yield Rig(service, topic, recorder, kafka_bootstrap)
    await service.broker.stop()
    await service.engine.dispose()


async def test_poison_goes_to_the_dead_letter_topic_and_the_consumer_moves_on(rig: Rig) -> None:
    await produce_raw(rig.bootstrap, rig.topic, b"{this is not json", key=b"k")
    await produce(
        rig.bootstrap, rig.topic, thing("x", fail_times=0).model_copy(update={"schema_version": 9})
    )
    await produce(rig.bootstrap, rig.topic, thing("after-poison"))

    await until(
        lambda: rig.recorder.handled == ["after-poison"],
        timeout=30,
        what="the good message after the poison to be handled",
    )
    await until(lambda: rig.committed_is(3), timeout=15, what="offsets committed past")
    letters = await rig.dead_letters()
    assert letters[0][0] == b"{this is not json"
    codes = [(h["dlq_error_code"], h["dlq_original_topic"], h["dlq_attempts"]) for _, h in letters]
    assert codes == [("input_invalid", rig.topic, "1")] * 2
    assert "unknown schema version 9" in letters[1][1]["dlq_error_message"]


async def test_a_failing_handler_is_retried_then_succeeds_once(rig: Rig) -> None:
    await produce(rig.bootstrap, rig.topic, thing("flaky", fail_times=2))
    await until(lambda: rig.committed_is(1), timeout=30, what="the offset to commit")
    assert rig.recorder.handled == ["flaky"]
    assert rig.recorder.attempts["flaky"] == 3
    assert await rig.dead_letters() == []


async def test_a_handler_failing_every_attempt_is_dead_lettered_as_internal(rig: Rig) -> None:
    await produce(rig.bootstrap, rig.topic, thing("broken", fail_times=99), thing("next"))
    await until(
        lambda: rig.recorder.handled == ["next"],
        timeout=30,
        what="the next message to be handled",
    )
    ((value, headers),) = await rig.dead_letters()
    assert Envelope.from_bytes(value).data["item"] == "broken"
    assert headers["dlq_error_code"] == "internal"
    assert headers["dlq_attempts"] == "3"
    assert "ConnectionError" in headers["dlq_error_message"]
    assert rig.recorder.attempts["broken"] == 3


async def test_a_rejected_message_is_dead_lettered_at_once_with_its_code(rig: Rig) -> None:
    await produce(rig.bootstrap, rig.topic, thing("never", reject=True))
    await until(lambda: rig.committed_is(1), timeout=30, what="the offset to commit")
    ((_, headers),) = await rig.dead_letters()
    assert headers["dlq_error_code"] == "input_invalid"
    assert headers["dlq_attempts"] == "1"
    assert rig.recorder.attempts["never"] == 1


async def test_the_same_event_delivered_twice_is_handled_once(rig: Rig) -> None:
    sent = thing("twice")
    await produce(rig.bootstrap, rig.topic, sent, sent, thing("sentinel"))
    await until(lambda: rig.committed_is(3), timeout=30, what="all three committed")
    assert rig.recorder.handled == ["twice", "sentinel"]
