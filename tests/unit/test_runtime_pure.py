"""The runtime's pure parts: envelope parsing for dead letters, logging context, backoff,
settings and the broker factory's safe defaults."""

from __future__ import annotations

import io
import json
import logging
import ssl
from types import SimpleNamespace

import certifi
import pytest
from faststream import AckPolicy
from faststream.kafka.security import parse_security

from contracts import root_envelope
from services.runtime.backoff import full_jitter
from services.runtime.broker import (
    kafka_client_options,
    kafka_security,
    make_broker,
    subscriber_options,
)
from services.runtime.delivery import DeadLetter, dead_letter_headers, parse_envelope
from services.runtime.logging import JsonFormatter, bind, bind_envelope
from services.runtime.settings import Settings, settings_for

VERSIONS = {"cardflow.card.analyzed": {1}}


def envelope(**overrides: object):  # type: ignore[no-untyped-def]
    fields: dict[str, object] = {
        "type": "cardflow.card.analyzed",
        "schema_version": 1,
        "source": "analysis",
        "tenant_id": "t1",
        "project_id": "p1",
        "run_id": "r1",
        "key": "card-1",
        "data": {"summary": "x"},
    }
    return root_envelope(**(fields | overrides))  # type: ignore[arg-type]


def test_a_valid_envelope_of_a_known_version_parses() -> None:
    sent = envelope()
    assert parse_envelope(sent.to_bytes(), VERSIONS) == sent


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "empty message"),
        (b"{not json", "not a valid envelope"),
        (b'{"id": "x"}', "not a valid envelope"),
        (b"\xff\xfe\x00binary", "not a valid envelope"),
    ],
)
def test_poison_is_a_dead_letter_with_a_reason(raw: bytes, reason: str) -> None:
    result = parse_envelope(raw, VERSIONS)
    assert isinstance(result, DeadLetter)
    assert result.code == "input_invalid"
    assert reason in result.reason


def test_an_unknown_schema_version_is_a_dead_letter() -> None:
    result = parse_envelope(envelope(schema_version=7).to_bytes(), VERSIONS)
    assert result == DeadLetter(
        "input_invalid", "unknown schema version 7 of cardflow.card.analyzed"
    )


def test_an_unknown_event_type_is_a_dead_letter_but_any_type_passes_without_a_filter() -> None:
    other = envelope(type="cardflow.other.thing")
    assert isinstance(parse_envelope(other.to_bytes(), VERSIONS), DeadLetter)
    assert parse_envelope(other.to_bytes(), None) == other


def test_dead_letter_headers_keep_where_it_came_from_and_why() -> None:
    record = SimpleNamespace(topic="cardflow.cards.analyzed.v1", partition=2, offset=41)
    headers = dead_letter_headers(record, "epics", DeadLetter("internal", "boom"), attempts=5)  # type: ignore[arg-type]
    assert headers["dlq_original_topic"] == "cardflow.cards.analyzed.v1"
    assert headers["dlq_original_partition"] == "2"
    assert headers["dlq_original_offset"] == "41"
    assert headers["dlq_error_code"] == "internal"
    assert headers["dlq_attempts"] == "5"
    assert headers["dlq_consumer"] == "epics"


def log_line(logger_name: str, message: str) -> dict[str, object]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(logger_name)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        logger.info(message, extra={"fields": {"attempt": 2}})
    finally:
        logger.removeHandler(handler)
    return dict(json.loads(stream.getvalue()))


def test_log_lines_carry_the_ids_of_the_envelope_being_handled() -> None:
    sent = envelope()
    child = sent.caused(
        type="cardflow.epic.generated", schema_version=1, source="epics", key="epic-1", data={}
    )
    with bind_envelope(child):
        line = log_line("test.ctx", "handled")
    assert line["message"] == "handled"
    assert line["tenant_id"] == "t1"
    assert line["project_id"] == "p1"
    assert line["run_id"] == "r1"
    assert line["correlation_id"] == sent.correlation_id
    assert line["causation_id"] == sent.id
    assert line["event_id"] == child.id
    assert line["attempt"] == 2
    assert "time" in line
    assert line["level"] == "INFO"


def test_bound_ids_do_not_leak_past_their_block() -> None:
    with bind(run_id="r9"):
        assert log_line("test.ctx2", "in")["run_id"] == "r9"
    assert "run_id" not in log_line("test.ctx2", "out")


@pytest.mark.parametrize("attempt", [1, 2, 3, 8, 30])
def test_backoff_stays_within_its_exponential_ceiling(attempt: int) -> None:
    ceiling = min(10.0, 0.5 * 2 ** (attempt - 1))
    delays = [full_jitter(attempt, 0.5, 10.0) for _ in range(200)]
    assert all(0 <= d <= ceiling for d in delays)
    assert max(delays) > ceiling / 4, "jitter should use the range, not a constant"


def test_settings_come_from_cardflow_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARDFLOW_KAFKA_BOOTSTRAP_SERVERS", "kafka-1:9092,kafka-2:9092")
    monkeypatch.setenv("CARDFLOW_SERVICE_NAME", "stories")
    monkeypatch.setenv("CARDFLOW_STATE_DIR", "/tmp/cf-state")
    settings = Settings()
    assert settings.kafka_bootstrap_servers == "kafka-1:9092,kafka-2:9092"
    assert settings.resolved_database_url() == "sqlite+aiosqlite:////tmp/cf-state/data/stories.db"
    monkeypatch.setenv("CARDFLOW_DATABASE_URL", "postgresql+asyncpg://u@db/cardflow")
    assert Settings().resolved_database_url() == "postgresql+asyncpg://u@db/cardflow"


def test_settings_reject_nonsense(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARDFLOW_GATEWAY_PORT", "70000")
    with pytest.raises(ValueError, match="gateway_port"):
        Settings()


def test_broker_factory_commits_only_after_the_handler_and_keeps_messages() -> None:
    settings = Settings(service_name="stories", kafka_bootstrap_servers="127.0.0.1:1")
    broker = make_broker(settings)
    options = subscriber_options(settings)
    subscriber = broker.subscriber("cardflow.stories.requested.v1", **options)
    # The trap: FastStream's default ACK_FIRST commits before the handler runs.
    assert subscriber.ack_policy is AckPolicy.NACK_ON_ERROR
    assert options["group_id"] == "stories"
    assert options["auto_offset_reset"] == "earliest"
    assert options["isolation_level"] == "read_committed"


def test_a_service_goes_by_its_own_name_unless_the_environment_names_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CARDFLOW_SERVICE_NAME", raising=False)
    monkeypatch.delenv("CARDFLOW_DATABASE_URL", raising=False)
    assert settings_for("gateway").service_name == "gateway"
    monkeypatch.setenv("CARDFLOW_SERVICE_NAME", "gateway-eu")
    settings = settings_for("gateway")
    assert settings.service_name == "gateway-eu"
    assert settings.resolved_database_url().endswith("gateway-eu.db")


def test_kafka_clients_connect_in_plaintext_unless_told() -> None:
    settings = Settings(kafka_bootstrap_servers="k:9092")
    assert kafka_security(settings) is None
    assert kafka_client_options(settings) == {"bootstrap_servers": "k:9092"}


@pytest.mark.parametrize(
    ("protocol", "mechanism"),
    [
        ("SASL_PLAINTEXT", "PLAIN"),
        ("SASL_SSL", "SCRAM-SHA-256"),
        ("SASL_SSL", "SCRAM-SHA-512"),
    ],
)
def test_sasl_settings_reach_every_kafka_client(protocol: str, mechanism: str) -> None:
    settings = Settings(
        kafka_security_protocol=protocol,  # type: ignore[arg-type]
        kafka_sasl_mechanism=mechanism,  # type: ignore[arg-type]
        kafka_sasl_username="svc",
        kafka_sasl_password="pw",  # type: ignore[arg-type]
        kafka_ssl_cafile=certifi.where(),  # type: ignore[arg-type]
    )
    options = kafka_client_options(settings)
    assert options["security_protocol"] == protocol
    assert options["sasl_mechanism"] == mechanism
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("svc", "pw")
    context = options["ssl_context"]
    if protocol == "SASL_SSL":
        assert context.verify_mode == ssl.CERT_REQUIRED
        assert context.check_hostname
        assert context.cert_store_stats()["x509_ca"] > 0, "the CA file was loaded"
    else:
        assert context is None
    # The FastStream broker (consumers, producers) connects with the very same options.
    broker = parse_security(make_broker(settings).specification.security)
    assert (broker.pop("ssl_context") is None) == (context is None)
    assert broker == {
        k: v for k, v in options.items() if k not in ("bootstrap_servers", "ssl_context")
    }


def test_tls_without_sasl_checks_the_brokers_certificate() -> None:
    options = kafka_client_options(Settings(kafka_security_protocol="SSL"))
    assert options["security_protocol"] == "SSL"
    assert options["ssl_context"].verify_mode == ssl.CERT_REQUIRED


def test_sasl_without_credentials_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="CARDFLOW_KAFKA_SASL_USERNAME"):
        Settings(kafka_security_protocol="SASL_SSL", kafka_sasl_username="svc")
