"""Against a broker that requires SASL authentication (a real Kafka with a SASL_PLAINTEXT
listener, PLAIN and SCRAM-SHA-512): a service with the right credentials consumes, handles,
publishes through its relay, and the gateway-side tools (lag, dead letters) read; with a
wrong password it says so and stops rather than pretending to run."""

from __future__ import annotations

import contextlib
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.runtime.dlq import read_dead_letters
from services.runtime.lag import read_lag
from services.runtime.settings import Settings
from tests.support import infra
from tests.support.effect_rig import EffectRig, request
from tests.support.kafka_io import create_topics, produce

pytestmark = [pytest.mark.kafka, pytest.mark.integration]

USER = "cardflow"
PASSWORD = secrets.token_urlsafe(16)


@pytest.fixture(scope="module")
def sasl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[infra.LocalKafka]:
    with contextlib.ExitStack() as resources:
        try:
            broker = resources.enter_context(
                infra.own_local_kafka(
                    tmp_path_factory.mktemp("sasl-kafka"), sasl_users={USER: PASSWORD}
                )
            )
        except infra.InfraError as error:
            pytest.fail(str(error), pytrace=False)
        yield broker


def sasl_env(broker: infra.LocalKafka, mechanism: str, password: str) -> dict[str, str]:
    return {
        "CARDFLOW_KAFKA_BOOTSTRAP_SERVERS": broker.sasl_bootstrap,
        "CARDFLOW_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "CARDFLOW_KAFKA_SASL_MECHANISM": mechanism,
        "CARDFLOW_KAFKA_SASL_USERNAME": USER,
        "CARDFLOW_KAFKA_SASL_PASSWORD": password,
    }


@pytest.fixture
async def rig(sasl_broker: infra.LocalKafka, database_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    # Topics made and messages produced on the plaintext listener: only the service under
    # test connects with SASL.
    rig = EffectRig(sasl_broker.bootstrap, database_url, tmp_path)
    await create_topics(sasl_broker.bootstrap, rig.in_topic, rig.out_topic)
    yield rig
    await rig.close()


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-512"])
async def test_a_service_with_credentials_consumes_handles_and_publishes(
    rig: EffectRig, sasl_broker: infra.LocalKafka, mechanism: str
) -> None:
    sent = request(f"card-{uuid.uuid4().hex[:6]}")
    await produce(rig.bootstrap, rig.in_topic, sent)
    proc, _ = rig.process(extra_env=sasl_env(sasl_broker, mechanism, PASSWORD))
    try:
        await rig.settled(proc)
        await rig.assert_exactly_once(sent)
    finally:
        proc.terminate()

    settings = Settings(
        service_name="gateway",
        kafka_bootstrap_servers=sasl_broker.sasl_bootstrap,
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism=mechanism,  # type: ignore[arg-type]
        kafka_sasl_username=USER,
        kafka_sasl_password=PASSWORD,  # type: ignore[arg-type]
    )
    lag = await read_lag(settings)
    assert lag[(rig.name, rig.in_topic, 0)] == 0, lag
    waiting = (await read_dead_letters(settings)).waiting_by_topic()
    assert waiting, "the dead-letter topics were read"
    assert not any(waiting.values()), waiting


async def test_a_wrong_password_stops_the_service_with_the_reason(
    rig: EffectRig, sasl_broker: infra.LocalKafka
) -> None:
    proc, _ = rig.process(extra_env=sasl_env(sasl_broker, "SCRAM-SHA-512", "not-the-password"))
    code = proc.wait_exit(timeout=90)
    assert code != 0
    assert "authentication" in proc.log_tail(60).lower(), proc.log_tail(60)
