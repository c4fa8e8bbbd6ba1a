"""Kill-before-commit: a service is SIGKILLed mid-message; after restart the effect happens
exactly once and its event reaches the topic exactly once. Real broker, real databases,
real processes (tests/integration/apps/effect_service.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.apps.effect_service import effects
from tests.support.effect_rig import START_TIMEOUT, EffectRig, request
from tests.support.kafka_io import create_topics, produce

pytestmark = [pytest.mark.kafka, pytest.mark.integration]


@pytest.fixture
async def rig(kafka_bootstrap: str, database_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    rig = EffectRig(kafka_bootstrap, database_url, tmp_path)
    await create_topics(kafka_bootstrap, rig.in_topic, rig.out_topic)
    yield rig
    await rig.close()


@pytest.mark.parametrize("pause", ["in_handler", "before_offset_commit"])
async def test_killed_mid_message_is_redelivered_and_takes_effect_once(
    rig: EffectRig, pause: str
) -> None:
    sent = request("card-1")
    await produce(rig.bootstrap, rig.in_topic, sent)

    first, marker = rig.process(pause=pause)
    first.wait_for_file(marker, timeout=START_TIMEOUT)
    first.kill()

    # The fault was real: the offset was never committed, and the effect is either
    # rolled back (killed in the handler) or durable (killed after the transaction).
    assert await rig.committed() == 0
    assert await rig.count(effects) == (0 if pause == "in_handler" else 1)

    second, _ = rig.process()
    await rig.settled(second)
    assert second.terminate() == 0, second.log_tail()
    await rig.assert_exactly_once(sent)


@pytest.mark.parametrize("pause", ["relay_before_kafka_commit", "relay_after_kafka_commit"])
async def test_relay_killed_mid_publish_does_not_duplicate_the_event_in_the_topic(
    rig: EffectRig, pause: str
) -> None:
    sent = request("card-2")
    await produce(rig.bootstrap, rig.in_topic, sent)

    first, marker = rig.process(pause=pause)
    first.wait_for_file(marker, timeout=START_TIMEOUT)
    first.kill()
    assert await rig.count(effects) == 1
    assert not await rig._all_published(), "the crash left the outbox row unmarked"

    second, _ = rig.process()
    await rig.settled(second)
    assert second.terminate() == 0, second.log_tail()
    await rig.assert_exactly_once(sent)

    raw = await rig.out_events(isolation_level="read_uncommitted")
    if pause == "relay_before_kafka_commit":
        # The killed relay's records sit in the log, aborted when its successor fenced it;
        # read_committed consumers never see them.
        assert len(raw) == 2
    else:
        # Its successor found the batch in the ledger and did not publish it again.
        assert len(raw) == 1


async def test_sigterm_mid_message_finishes_it_before_exiting(rig: EffectRig) -> None:
    sent = request("card-3")
    await produce(rig.bootstrap, rig.in_topic, sent)
    proc, marker = rig.process(pause="slow_in_handler")
    proc.wait_for_file(marker, timeout=START_TIMEOUT)
    assert await rig.committed() == 0

    assert proc.terminate() == 0, proc.log_tail()

    # No restart: the draining process itself committed the effect, the offset and the event.
    assert await rig.committed() == 1
    assert await rig._all_published()
    await rig.assert_exactly_once(sent)
