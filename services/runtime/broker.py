"""The one broker factory: FastStream's Kafka broker with defaults that do not lose messages.

FastStream's own default (``AckPolicy.ACK_FIRST``) commits the offset before the handler
runs, so a crash mid-handler loses the message. Here the offset is committed only after the
handler returned, and an escaping exception rewinds the partition so the message is
redelivered. New consumer groups start from the earliest offset, so events published before
a service first started are not skipped.
"""

from __future__ import annotations

import logging
from typing import Any

from aiokafka import TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.helpers import create_ssl_context
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.kafka.security import parse_security
from faststream.security import (
    BaseSecurity,
    SASLPlaintext,
    SASLScram256,
    SASLScram512,
)
from prometheus_client import REGISTRY

from services.runtime.metrics import CONSUMER_REBALANCES
from services.runtime.settings import Settings


def make_broker(settings: Settings, **overrides: Any) -> KafkaBroker:
    options: dict[str, Any] = {
        "client_id": f"{settings.service_name}-{settings.instance_id}",
        "ack_policy": AckPolicy.NACK_ON_ERROR,
        "enable_idempotence": True,
        "acks": "all",
        "graceful_timeout": settings.kafka_graceful_timeout_s,
        # FastStream's default logger has a coloured handler of its own; this one has none and
        # propagates to the root's (JSON) handler.
        "logger": logging.getLogger("cardflow.broker"),
        # faststream_* message metrics (received, processed and their duration, in process,
        # published), labelled with the service as app_name.
        # ... and consumer/producer spans joining the trace a message's traceparent names
        # (no-ops unless tracing is configured: services.runtime.tracing).
        "middlewares": [
            KafkaPrometheusMiddleware(registry=REGISTRY, app_name=settings.service_name),
            KafkaTelemetryMiddleware(),
        ],
    }
    security = kafka_security(settings)
    if security is not None:
        options["security"] = security
    options.update(overrides)
    return KafkaBroker(settings.kafka_bootstrap_servers, **options)


def kafka_security(settings: Settings) -> BaseSecurity | None:
    """The settings' TLS and SASL as FastStream's security object (None: plaintext)."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    use_ssl = protocol in ("SSL", "SASL_SSL")
    ssl_context = create_ssl_context(cafile=settings.kafka_ssl_cafile) if use_ssl else None
    if protocol == "SSL":
        return BaseSecurity(ssl_context=ssl_context, use_ssl=True)
    username = settings.kafka_sasl_username or ""
    password = (
        settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else ""
    )
    sasl = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}
    return sasl[settings.kafka_sasl_mechanism](
        username, password, ssl_context=ssl_context, use_ssl=use_ssl
    )


def kafka_client_options(settings: Settings) -> dict[str, Any]:
    """What every aiokafka client cardflow makes by hand (relay, admin, lag, dead letters)
    connects with: the bootstrap servers and the same TLS and SASL as the broker's."""
    return {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        **parse_security(kafka_security(settings)),
    }


def subscriber_options(settings: Settings, *, group_id: str | None = None) -> dict[str, Any]:
    """Keyword arguments for ``broker.subscriber`` that go with ``make_broker``'s policy."""
    return {
        "group_id": group_id or settings.service_name,
        "auto_offset_reset": "earliest",
        "isolation_level": "read_committed",
        "max_poll_interval_ms": settings.kafka_max_poll_interval_ms,
        "session_timeout_ms": settings.kafka_session_timeout_ms,
        "heartbeat_interval_ms": settings.kafka_heartbeat_interval_ms,
        "fetch_max_wait_ms": settings.kafka_fetch_max_wait_ms,
        "listener": RebalanceCounter(group_id or settings.service_name),
    }


class RebalanceCounter(ConsumerRebalanceListener):  # type: ignore[misc]
    """Counts the partition assignments a consumer group's member receives: a steady rise
    means members keep leaving and joining (crashes, or handlers past max.poll.interval)."""

    def __init__(self, group: str) -> None:
        self._group = group

    def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        pass

    def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        CONSUMER_REBALANCES.labels(group=self._group).inc()
