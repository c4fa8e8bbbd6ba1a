"""Dead letters on a real broker: ``cardflow dlq list`` says why a message failed; ``replay``
gets a fixed message to its consumer exactly once even when run twice, by topic or by id;
``--dry-run`` publishes nothing; a copy that fails again is a new dead letter; the dead
letter counter and waiting gauge are served by a stage service's metrics port and by the
gateway's /metrics.

Every test has its own topic prefix, so ``list`` sees only its own ``.dlq`` topics."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client import REGISTRY

from contracts import Envelope, dead_letter_topic, root_envelope
from contracts.topics import RUNS_PROGRESS
from services.gateway import cardflow
from services.gateway.app import create_app
from services.runtime.delivery import HandlerContext
from services.runtime.dlq import kafka as dlq_kafka
from services.runtime.dlq import records as dlq_records
from services.runtime.service import Service, build_service, running
from services.runtime.settings import Settings
from tests.support.infra import free_port, sqlite_url
from tests.support.kafka_io import produce_raw, read_all
from tests.support.wait import until

pytestmark = pytest.mark.integration

TYPE = "cardflow.test.thing_requested"
TOPIC = "test.things.v1"  # logical; each test's prefix is added


def thing(item: str) -> Envelope:
    return root_envelope(
        type=TYPE, schema_version=1, source="test", tenant_id="t1", key=item, data={"item": item}
    )


@dataclass
class Recorder:
    """A handler that fails for the items in ``broken`` (until a test fixes them)."""

    broken: set[str] = field(default_factory=set)
    handled: list[str] = field(default_factory=list)

    async def __call__(self, ctx: HandlerContext) -> None:
        item = ctx.envelope.data["item"]
        if item in self.broken:
            raise ConnectionError(f"{item} is broken")
        self.handled.append(item)


@dataclass
class Rig:
    service: Service
    recorder: Recorder
    bootstrap: str
    metrics_port: int

    @property
    def settings(self) -> Settings:
        return self.service.settings

    @property
    def topic(self) -> str:
        return self.settings.topic(TOPIC)

    @property
    def dlq_topic(self) -> str:
        return dead_letter_topic(self.topic)

    @property
    def consumer(self) -> str:
        return f"{self.settings.kafka_topic_prefix}{self.settings.service_name}.{TOPIC}"

    def env(self) -> dict[str, str]:
        return {
            "CARDFLOW_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "CARDFLOW_KAFKA_TOPIC_PREFIX": self.settings.kafka_topic_prefix,
        }

    async def cardflow(self, *argv: str) -> tuple[int, str, str]:
        """The real CLI (``main``), in a thread: it runs its own event loop."""
        out, err = io.StringIO(), io.StringIO()
        code = await asyncio.to_thread(
            cardflow.main, list(argv), env=self.env(), stdout=out, stderr=err
        )
        return code, out.getvalue(), err.getvalue()

    async def listed(self) -> dict[str, Any]:
        code, out, err = await self.cardflow("dlq", "list", "--json")
        assert code == 0, err
        listing: dict[str, Any] = json.loads(out)
        return listing

    async def dead_letters_are(self, count: int) -> bool:
        return len(await read_all(self.bootstrap, self.dlq_topic)) == count

    async def send(self, *envelopes: Envelope) -> None:
        # With the headers the outbox relay puts on an event, so a replay can be checked to
        # restore them.
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
        await producer.start()
        try:
            for envelope in envelopes:
                headers = [("correlation_id", envelope.correlation_id.encode())]
                headers.append(("ce_id", envelope.id.encode()))
                await producer.send_and_wait(
                    self.topic, envelope.to_bytes(), key=envelope.key.encode(), headers=headers
                )
        finally:
            await producer.stop()


def counted(topic: str, consumer: str, code: str) -> float:
    labels = {"topic": topic, "consumer": consumer, "code": code}
    return REGISTRY.get_sample_value("cardflow_dead_letters_total", labels) or 0.0


@pytest.fixture
async def rig(kafka_bootstrap: str, tmp_path: Path) -> AsyncIterator[Rig]:
    name = f"dlq-{uuid.uuid4().hex[:8]}"
    port = free_port()
    settings = Settings(
        service_name=name,
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_topic_prefix=f"{name}.",
        kafka_topic_partitions=1,
        database_url=sqlite_url(tmp_path / "service.db"),
        state_dir=tmp_path,
        handler_max_attempts=2,
        handler_retry_base_s=0.01,
        handler_retry_max_s=0.05,
        kafka_session_timeout_ms=6000,
        metrics_port=port,
    )
    service = build_service(settings)
    recorder = Recorder()
    service.consumers.register(TOPIC, recorder, accepted_versions={TYPE: {1}})
    async with running(service):
        yield Rig(service, recorder, kafka_bootstrap, port)


async def test_list_shows_a_poison_messages_reason_and_the_counter_is_served(rig: Rig) -> None:
    before = counted(rig.topic, rig.consumer, "input_invalid")
    await produce_raw(rig.bootstrap, rig.topic, b"{this is not json", key=b"k")
    await until(lambda: rig.dead_letters_are(1), timeout=30, what="the poison's dead letter")

    code, out, err = await rig.cardflow("dlq", "list")
    assert code == 0, err
    assert f"{rig.dlq_topic}:0:0  waiting" in out
    assert f"from     {rig.topic} [0] @0  consumer {rig.consumer}" in out
    assert "error    input_invalid after 1 attempt(s): not a valid envelope" in out
    assert "1 dead letters, 1 waiting for replay" in out

    listing = await rig.listed()
    (letter,) = listing["dead_letters"]
    assert (letter["code"], letter["event_id"], letter["value_preview"]) == (
        "input_invalid",
        None,
        "{this is not json",
    )
    assert (listing["waiting"][rig.topic], listing["waiting_total"]) == (1, 1)

    assert counted(rig.topic, rig.consumer, "input_invalid") == before + 1
    async with httpx.AsyncClient() as http:
        scraped = (await http.get(f"http://127.0.0.1:{rig.metrics_port}/metrics")).text
    labels = f'code="input_invalid",consumer="{rig.consumer}",topic="{rig.topic}"'
    assert f"cardflow_dead_letters_total{{{labels}}} 1.0" in scraped


async def test_a_fixed_message_replayed_twice_reaches_the_consumer_once(rig: Rig) -> None:
    broken = thing("broken")
    rig.recorder.broken.add("broken")
    await rig.send(broken)
    await until(lambda: rig.dead_letters_are(1), timeout=30, what="the dead letter")
    assert counted(rig.topic, rig.consumer, "internal") == 1
    (letter,) = (await rig.listed())["dead_letters"]
    assert (letter["event_id"], letter["event_type"], letter["attempts"]) == (broken.id, TYPE, 2)
    assert letter["message"] == "ConnectionError: broken is broken"

    rig.recorder.broken.clear()  # the fix is deployed
    code, first, err = await rig.cardflow("dlq", "replay", "--topic", TOPIC)
    assert code == 0, err
    assert first.startswith("replayed 1 message(s):")
    code, second, err = await rig.cardflow("dlq", "replay", "--topic", TOPIC)
    assert code == 0, err
    assert second.startswith("nothing to replay")
    assert f"{rig.dlq_topic}:0:0 at " in second

    await until(lambda: rig.recorder.handled == ["broken"], timeout=30, what="the replay handled")
    await rig.send(thing("sentinel"))
    await until(lambda: "sentinel" in rig.recorder.handled, timeout=30, what="the sentinel")
    assert rig.recorder.handled == ["broken", "sentinel"]

    # Published once (the inbox alone would hide a second copy from the handler).
    records = await read_all(rig.bootstrap, rig.topic)
    assert len(records) == 3
    copy = records[1]
    assert (copy.value, copy.key) == (broken.to_bytes(), b"broken")
    headers = dict(copy.headers)
    assert headers["correlation_id"] == broken.correlation_id.encode()
    assert headers["ce_id"] == broken.id.encode()
    assert headers["cardflow_replay_of"] == f"{rig.dlq_topic}:0:0".encode()
    assert not [name for name in headers if name.startswith("dlq_")]

    listing = await rig.listed()
    assert listing["waiting_total"] == 0
    assert listing["dead_letters"][0]["replayed"]["offset"] == 1


async def test_two_replays_at_once_publish_one_copy(rig: Rig) -> None:
    rig.recorder.broken.add("contested")
    await rig.send(thing("contested"))
    await until(lambda: rig.dead_letters_are(1), timeout=30, what="the dead letter")
    rig.recorder.broken.clear()

    runs = await asyncio.gather(*(rig.cardflow("dlq", "replay", "--topic", TOPIC) for _ in "ab"))
    # Whatever the interleaving: one replays, the other finds it replayed or was fenced.
    outcomes = sorted(
        "replayed" if out.startswith("replayed 1") else "fenced" if "took over" in err else out
        for _, out, err in runs
    )
    assert outcomes[0] == "fenced" or outcomes[0].startswith("nothing to replay"), runs
    assert outcomes[1] == "replayed", runs
    await until(lambda: rig.recorder.handled == ["contested"], timeout=30, what="handled")
    assert len(await read_all(rig.bootstrap, rig.topic)) == 2


async def test_replay_by_id_replays_only_that_event(rig: Rig) -> None:
    first, second = thing("first"), thing("second")
    rig.recorder.broken.update({"first", "second"})
    await rig.send(first, second)
    await until(lambda: rig.dead_letters_are(2), timeout=30, what="both dead letters")
    rig.recorder.broken.clear()

    code, out, err = await rig.cardflow("dlq", "replay", "--id", second.id)
    assert code == 0, err
    assert f"event {second.id}" in out
    await until(lambda: rig.recorder.handled == ["second"], timeout=30, what="second handled")

    code, out, err = await rig.cardflow("dlq", "replay", "--id", "no-such-event", first.id)
    assert code == 2
    assert "no dead letter with id no-such-event; nothing was replayed" in err

    listing = await rig.listed()
    waiting = {d["event_id"]: d["waiting"] for d in listing["dead_letters"]}
    assert waiting == {first.id: True, second.id: False}
    await rig.send(thing("sentinel"))
    await until(lambda: "sentinel" in rig.recorder.handled, timeout=30, what="the sentinel")
    assert rig.recorder.handled == ["second", "sentinel"]


async def test_a_dry_run_publishes_nothing(rig: Rig) -> None:
    rig.recorder.broken.add("broken")
    await rig.send(thing("broken"))
    await until(lambda: rig.dead_letters_are(1), timeout=30, what="the dead letter")

    code, out, err = await rig.cardflow("dlq", "replay", "--topic", rig.dlq_topic, "--dry-run")
    assert code == 0, err
    assert out.startswith("would replay 1 message(s); nothing was published:")
    assert f"{rig.dlq_topic}:0:0 -> {rig.topic} [0]" in out

    assert len(await read_all(rig.bootstrap, rig.topic)) == 1
    ledger = rig.settings.topic(dlq_records.LEDGER_TOPIC)
    existing = await _topics(rig.bootstrap)
    assert ledger not in existing or not await read_all(rig.bootstrap, ledger)
    assert (await rig.listed())["waiting_total"] == 1


async def test_a_replay_that_fails_again_is_a_new_dead_letter(rig: Rig) -> None:
    await produce_raw(rig.bootstrap, rig.topic, b"still poison", key=b"k")
    await until(lambda: rig.dead_letters_are(1), timeout=30, what="the dead letter")
    ref = f"{rig.dlq_topic}:0:0"

    code, out, err = await rig.cardflow("dlq", "replay", "--id", ref)  # no envelope: by ref
    assert out.startswith("replayed 1 message(s):")
    assert code == 0, err
    await until(lambda: rig.dead_letters_are(2), timeout=30, what="the copy's dead letter")

    old, new = (await rig.listed())["dead_letters"]
    assert (old["ref"], old["waiting"], old["replayed"]["offset"]) == (ref, False, 1)
    assert (new["waiting"], new["replay_of"], new["original_offset"]) == (True, ref, 1)
    assert counted(rig.topic, rig.consumer, "input_invalid") == 2


async def _topics(bootstrap: str) -> set[str]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        return set(await consumer.topics())
    finally:
        await consumer.stop()


async def test_the_gateway_serves_the_counter_and_the_waiting_gauge(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    prefix = f"dlq-gw-{uuid.uuid4().hex[:8]}."
    settings = Settings(
        service_name="gateway",
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_topic_prefix=prefix,
        kafka_topic_partitions=1,
        database_url=sqlite_url(tmp_path / "gateway.db"),
        state_dir=tmp_path,
        dlq_waiting_interval_s=0.2,
    )
    app = create_app(settings)
    topic = settings.topic(RUNS_PROGRESS.name)
    consumer = f"{prefix}gateway.{RUNS_PROGRESS.name}"
    counter = (
        f'cardflow_dead_letters_total{{code="input_invalid",consumer="{consumer}",topic="{topic}"}}'
    )
    gauge = f'cardflow_dead_letters_waiting{{topic="{topic}"}}'

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:

            async def metrics_show(*lines: str) -> bool:
                text = (await http.get("/metrics")).text
                return all(line in text.splitlines() for line in lines)

            await until(lambda: metrics_show(f"{gauge} 0.0"), timeout=30, what="the gauge at 0")
            await produce_raw(kafka_bootstrap, topic, b"not an envelope", key=b"run-1")
            await until(
                lambda: metrics_show(f"{counter} 1.0", f"{gauge} 1.0"),
                timeout=30,
                what="the gateway's dead letter counted and waiting",
            )
            # Replayed, it fails again: two dead letters so far, one of them waiting.
            result = await dlq_kafka.replay(settings, topics=[RUNS_PROGRESS.name])
            assert len(result.replays) == 1
            await until(
                lambda: metrics_show(f"{counter} 2.0", f"{gauge} 1.0"),
                timeout=30,
                what="the copy dead-lettered again, the first no longer waiting",
            )
