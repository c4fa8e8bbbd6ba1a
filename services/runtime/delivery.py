"""Consuming with an exactly-once effect: the one place handlers are wrapped.

For each message: parse the envelope (poison goes to the dead-letter topic at once), then in
one database transaction claim the event in the inbox, run the handler, and write the events
it emits to the outbox. Only after that commit does FastStream commit the offset. A crash
anywhere before the commit redelivers the message and redoes the work from scratch; a crash
after it redelivers a message whose inbox row already exists, so nothing changes.

Failures that may pass (a database blip) are retried here with backoff, a bounded number of
times and never past the consumer's poll interval; then the message is dead-lettered with
its error code. This wrapper is the one owner of retries for message handling.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import ConsumerRecord
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts import Envelope, dead_letter_topic
from services.runtime import inbox, outbox
from services.runtime.backoff import full_jitter, sleep_or_stop
from services.runtime.broker import subscriber_options
from services.runtime.logging import bind_envelope
from services.runtime.metrics import DEAD_LETTERS
from services.runtime.settings import Settings
from services.runtime.tracing import run_span

log = logging.getLogger(__name__)


class Rejected(Exception):
    """Raised by a handler for a message that will never succeed: dead-lettered at once."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(slots=True)
class HandlerContext:
    """What a handler gets: the event, the open transaction, and a way to emit events."""

    envelope: Envelope
    session: AsyncSession
    consumer: str
    emitted: list[Envelope] = field(default_factory=list)

    async def emit(self, topic: str, envelope: Envelope) -> None:
        """Queues an event in the outbox, inside the handler's transaction."""
        await outbox.enqueue(self.session, topic, envelope)
        self.emitted.append(envelope)


Handler = Callable[[HandlerContext], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    code: str
    reason: str


def parse_envelope(
    raw: bytes | None, accepted_versions: Mapping[str, Collection[int]] | None
) -> Envelope | DeadLetter:
    """Pure: the envelope in a message, or why it can never be handled."""
    if not raw:
        return DeadLetter("input_invalid", "empty message")
    try:
        envelope = Envelope.from_bytes(raw)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "message"
        return DeadLetter("input_invalid", f"not a valid envelope: {where}: {first.get('msg')}")
    if accepted_versions is not None:
        versions = accepted_versions.get(envelope.type)
        if versions is None:
            return DeadLetter("input_invalid", f"unknown event type {envelope.type}")
        if envelope.schema_version not in versions:
            return DeadLetter(
                "input_invalid",
                f"unknown schema version {envelope.schema_version} of {envelope.type}",
            )
    return envelope


DEAD_LETTER_HEADER_PREFIX = "dlq_"


def carried_headers(headers: Iterable[tuple[str, bytes | None]] | None) -> dict[str, str]:
    """The original message's headers, kept on its dead letter so a replay restores them
    (correlation and ``ce_*`` ids). Those of an earlier dead-lettering of the same message
    (a replayed one) are dropped: the new ``dlq_*`` headers describe this failure."""
    return {
        name: (value or b"").decode("utf-8", errors="replace")
        for name, value in headers or ()
        if not name.startswith(DEAD_LETTER_HEADER_PREFIX)
    }


def dead_letter_headers(
    record: ConsumerRecord[Any, Any], consumer: str, letter: DeadLetter, attempts: int
) -> dict[str, str]:
    return {
        "dlq_original_topic": record.topic,
        "dlq_original_partition": str(record.partition),
        "dlq_original_offset": str(record.offset),
        "dlq_consumer": consumer,
        "dlq_error_code": letter.code,
        "dlq_error_message": letter.reason[:2000],
        "dlq_attempts": str(attempts),
        "dlq_time": datetime.now(UTC).isoformat(),
    }


class Consumers:
    """Registers handlers on a broker with the delivery rules above."""

    def __init__(
        self,
        settings: Settings,
        broker: KafkaBroker,
        sessions: async_sessionmaker[AsyncSession],
        *,
        on_committed: Callable[[], None] | None = None,
        stop: asyncio.Event | None = None,
    ) -> None:
        self._settings = settings
        self._broker = broker
        self._sessions = sessions
        self._commit_listeners: list[Callable[[], None]] = [on_committed] if on_committed else []
        self._stop = stop or asyncio.Event()
        self.topics: list[str] = []

    def add_commit_listener(self, listener: Callable[[], None]) -> None:
        """Called after a handler's transaction committed (e.g. wake the relay or a runner)."""
        self._commit_listeners.append(listener)

    def register(
        self,
        topic: str,
        handler: Handler,
        *,
        group_id: str | None = None,
        accepted_versions: Mapping[str, Collection[int]] | None = None,
    ) -> None:
        # A group per (service, topic): subscribers of one service joining one group would
        # rebalance each other on every start, and a slow topic would stall the others.
        # The topic prefix is part of it, so environments sharing a cluster never share groups.
        settings = self._settings
        consumer = group_id or f"{settings.kafka_topic_prefix}{settings.service_name}.{topic}"

        async def on_message(message: KafkaMessage) -> None:
            await self.deliver(message.raw_message, consumer, handler, accepted_versions)

        self._broker.subscriber(
            self._settings.topic(topic), **subscriber_options(self._settings, group_id=consumer)
        )(on_message)
        self.topics.append(topic)

    async def deliver(
        self,
        record: Any,
        consumer: str,
        handler: Handler,
        accepted_versions: Mapping[str, Collection[int]] | None,
    ) -> None:
        parsed = parse_envelope(record.value, accepted_versions)
        if isinstance(parsed, DeadLetter):
            log.warning(
                "dead-lettering a message that cannot be handled",
                extra={
                    "fields": {
                        "topic": record.topic,
                        "offset": record.offset,
                        "error_code": parsed.code,
                        "reason": parsed.reason,
                    }
                },
            )
            await self._dead_letter(record, consumer, parsed, attempts=1)
            return
        with (
            bind_envelope(parsed),
            run_span(
                f"handle {parsed.type}",
                parsed.run_id,
                **{"messaging.consumer.group.name": consumer, "cardflow.event_id": parsed.id},
            ),
        ):
            await self._handle_with_retries(record, consumer, handler, parsed)

    async def _handle_with_retries(
        self, record: Any, consumer: str, handler: Handler, envelope: Envelope
    ) -> None:
        settings = self._settings
        for attempt in range(1, settings.handler_max_attempts + 1):
            try:
                await self._handle_once(consumer, handler, envelope)
                return
            except Rejected as rejected:
                await self._dead_letter(
                    record, consumer, DeadLetter(rejected.code, rejected.message), attempt
                )
                return
            except Exception as error:
                if attempt == settings.handler_max_attempts:
                    log.exception("handler failed; dead-lettering")
                    letter = DeadLetter("internal", f"{type(error).__name__}: {error}")
                    await self._dead_letter(record, consumer, letter, attempt)
                    return
                delay = full_jitter(
                    attempt, settings.handler_retry_base_s, settings.handler_retry_max_s
                )
                log.warning(
                    "handler failed; retrying",
                    exc_info=True,
                    extra={"fields": {"attempt": attempt, "retry_in_s": round(delay, 2)}},
                )
                await sleep_or_stop(self._stop, delay)
                if self._stop.is_set():
                    # Shutting down: leave the message uncommitted for the next owner.
                    raise

    async def _handle_once(self, consumer: str, handler: Handler, envelope: Envelope) -> None:
        async with self._sessions() as session, session.begin():
            if not await inbox.claim(session, consumer, envelope.id):
                log.info("duplicate delivery ignored")
                return
            context = HandlerContext(envelope=envelope, session=session, consumer=consumer)
            await handler(context)
        for listener in self._commit_listeners:
            listener()

    async def _dead_letter(
        self, record: Any, consumer: str, letter: DeadLetter, attempts: int
    ) -> None:
        headers = carried_headers(record.headers)
        headers.update(dead_letter_headers(record, consumer, letter, attempts))
        await self._broker.publish(
            record.value or b"",
            topic=dead_letter_topic(record.topic),
            key=record.key,
            headers=headers,
        )
        DEAD_LETTERS.labels(topic=record.topic, consumer=consumer, code=letter.code).inc()
