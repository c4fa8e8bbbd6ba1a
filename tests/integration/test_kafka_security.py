"""Against a broker that requires authentication and encryption (a real Kafka with SASL_PLAINTEXT,
SSL and SASL_SSL listeners; SASL mechanisms PLAIN and SCRAM-SHA-512; a throwaway certificate):
a service with the right settings consumes, handles and publishes through its relay, and the
gateway-side tools (lag, dead letters) read; with a wrong password or a certificate it cannot
trust, it says so and stops rather than pretending to run."""

from __future__ import annotations

import contextlib
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.runtime.dlq.kafka import read_dead_letters
from services.runtime.lag import read_lag
from services.runtime.settings import Settings
from tests.support import infra
from tests.support.effect_rig import EffectRig, request
from tests.support.kafka_io import create_topics, produce
from tests.support.tls import BrokerCertificate, make_broker_certificate

pytestmark = [pytest.mark.kafka, pytest.mark.integration]

USER = "cardflow"
PASSWORD = secrets.token_urlsafe(16)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> BrokerCertificate:
    return make_broker_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def secured_broker(
    tmp_path_factory: pytest.TempPathFactory, certificate: BrokerCertificate
) -> Iterator[infra.LocalKafka]:
    with contextlib.ExitStack() as resources:
        try:
            broker = resources.enter_context(
                infra.own_local_kafka(
                    tmp_path_factory.mktemp("secured-kafka"),
                    sasl_users={USER: PASSWORD},
                    tls=certificate,
                )
            )
        except infra.InfraError as error:
            pytest.fail(str(error), pytrace=False)
        yield broker


def security_env(
    broker: infra.LocalKafka,
    protocol: str,
    *,
    mechanism: str = "SCRAM-SHA-512",
    password: str = PASSWORD,
    cafile: Path | None = None,
) -> dict[str, str]:
    env = {
        "CARDFLOW_KAFKA_BOOTSTRAP_SERVERS": broker.listener(protocol),
        "CARDFLOW_KAFKA_SECURITY_PROTOCOL": protocol,
    }
    if protocol.startswith("SASL_"):
        env |= {
            "CARDFLOW_KAFKA_SASL_MECHANISM": mechanism,
            "CARDFLOW_KAFKA_SASL_USERNAME": USER,
            "CARDFLOW_KAFKA_SASL_PASSWORD": password,
        }
    if cafile is not None:
        env["CARDFLOW_KAFKA_SSL_CAFILE"] = str(cafile)
    return env


@pytest.fixture
async def rig(secured_broker: infra.LocalKafka, database_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    # Topics made and messages produced on the plaintext listener: only the service under
    # test and the readers connect securely.
    rig = EffectRig(secured_broker.bootstrap, database_url, tmp_path)
    await create_topics(secured_broker.bootstrap, rig.in_topic, rig.out_topic)
    yield rig
    await rig.close()


@pytest.mark.parametrize(
    ("protocol", "mechanism"),
    [
        ("SASL_PLAINTEXT", "PLAIN"),
        ("SASL_PLAINTEXT", "SCRAM-SHA-512"),
        ("SSL", ""),
        ("SASL_SSL", "SCRAM-SHA-512"),
    ],
)
async def test_a_service_with_the_right_settings_consumes_handles_and_publishes(
    rig: EffectRig,
    secured_broker: infra.LocalKafka,
    certificate: BrokerCertificate,
    protocol: str,
    mechanism: str,
) -> None:
    env = security_env(
        secured_broker, protocol, mechanism=mechanism or "PLAIN", cafile=certificate.ca_pem
    )
    sent = request(f"card-{uuid.uuid4().hex[:6]}")
    await produce(rig.bootstrap, rig.in_topic, sent)
    proc, _ = rig.process(extra_env=env)
    try:
        await rig.settled(proc)
        await rig.assert_exactly_once(sent)
    finally:
        proc.terminate()

    settings = Settings(service_name="gateway", **_fields(env))
    lag = await read_lag(settings)
    assert lag[(rig.name, rig.in_topic, 0)] == 0, lag
    waiting = (await read_dead_letters(settings)).waiting_by_topic()
    assert waiting, "the dead-letter topics were read"
    assert not any(waiting.values()), waiting


@pytest.mark.parametrize(
    ("protocol", "wrong", "reason"),
    [
        ("SASL_PLAINTEXT", "password", "authentication"),
        # The system's CAs do not know the broker's certificate.
        ("SSL", "ca", "certificate verify failed"),
    ],
)
async def test_wrong_credentials_stop_the_service_with_the_reason(
    rig: EffectRig,
    secured_broker: infra.LocalKafka,
    certificate: BrokerCertificate,
    protocol: str,
    wrong: str,
    reason: str,
) -> None:
    env = security_env(
        secured_broker,
        protocol,
        password="not-the-password" if wrong == "password" else PASSWORD,
        cafile=None if wrong == "ca" else certificate.ca_pem,
    )
    proc, _ = rig.process(extra_env=env)
    code = proc.wait_exit(timeout=90)
    assert code != 0
    assert reason in proc.log_tail(80).lower(), proc.log_tail(80)


def _fields(env: dict[str, str]) -> dict[str, str]:
    """CARDFLOW_KAFKA_X=... as Settings keyword arguments."""
    return {k.removeprefix("CARDFLOW_").lower(): v for k, v in env.items()}
