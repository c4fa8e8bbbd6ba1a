"""Wiring and lifecycle shared by every service: build, migrate, run, drain, stop.

Shutdown order matters: stop consuming and let in-flight handlers finish (their offsets are
committed), then give the relay a moment to publish what they emitted, then close the
database. SIGTERM and SIGINT both start it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from faststream.kafka import KafkaBroker
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from contracts import all_topic_names, dead_letter_topic
from services.runtime import metrics, outbox
from services.runtime.broker import make_broker
from services.runtime.db import make_engine, make_sessions
from services.runtime.delivery import Consumers
from services.runtime.fleet import Fleet, build_fleet
from services.runtime.logging import configure_logging
from services.runtime.migrate import MigrationHistory, migrate
from services.runtime.periodic import refresh_every
from services.runtime.relay import OutboxRelay
from services.runtime.settings import Settings
from services.runtime.topics import ensure_topics
from services.runtime.tracing import configure_tracing

log = logging.getLogger(__name__)


@dataclass
class Service:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    broker: KafkaBroker
    relay: OutboxRelay
    consumers: Consumers
    stop: asyncio.Event
    fleet: Fleet
    migrations: list[MigrationHistory] = field(default_factory=list)


def build_service(
    settings: Settings,
    migrations: Iterable[MigrationHistory] = (),
    *,
    relay_class: type[OutboxRelay] = OutboxRelay,
) -> Service:
    engine = make_engine(settings.resolved_database_url(), echo=settings.database_echo)
    sessions = make_sessions(engine)
    broker = make_broker(settings)
    relay = relay_class(settings, engine, sessions)
    stop = asyncio.Event()
    consumers = Consumers(settings, broker, sessions, on_committed=relay.notify, stop=stop)
    fleet = build_fleet(settings, engine, sessions)
    return Service(
        settings, engine, sessions, broker, relay, consumers, stop, fleet, list(migrations)
    )


async def check_ready(service: Service, timeout_s: float = 2.0) -> dict[str, bool]:
    """Whether the broker and the database answer now (for /readyz and probes)."""
    database = False
    with contextlib.suppress(Exception):
        async with asyncio.timeout(timeout_s), service.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            database = True
    broker = False
    with contextlib.suppress(Exception):
        broker = await service.broker.ping(timeout_s)
    return {"database": database, "broker": broker}


async def prepare(service: Service) -> None:
    """Migrations and topics: idempotent, run at every start."""
    await migrate(service.engine, *service.migrations)
    await service.fleet.prepare()
    topics = all_topic_names() + service.consumers.topics
    topics += [dead_letter_topic(t) for t in service.consumers.topics]
    await ensure_topics(service.settings, topics)


Background = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


async def run_service(service: Service, background: Sequence[Background] = ()) -> None:
    """Runs until SIGTERM/SIGINT (see ``running`` for the start and stop order)."""
    settings = service.settings
    configure_logging(settings.service_name, settings.log_level, settings.log_format)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, service.stop.set)
    async with running(service, background):
        await service.stop.wait()


@contextlib.asynccontextmanager
async def running(service: Service, background: Sequence[Background] = ()) -> AsyncIterator[None]:
    """The service prepared and running for the block: the relay, the broker's consumers and
    the ``background`` loops (e.g. an item runner). On exit, the background loops stop
    first and the consumers drain their in-flight messages, then the relay publishes what
    they emitted, then the database closes."""
    stop_tracing = configure_tracing(service.settings)
    await prepare(service)
    relay_stop = asyncio.Event()
    relay_task = asyncio.create_task(service.relay.run(relay_stop), name="outbox-relay")
    sampler = asyncio.create_task(_sample_outbox(service, relay_stop), name="outbox-metrics")
    await service.broker.start()
    background_stop = asyncio.Event()
    pulse = metrics.LoopPulse()
    metrics.EVENT_LOOP_PULSE_AGE.set_function(pulse.age_s)
    tasks: list[asyncio.Task[None]] = [
        asyncio.create_task(loop_(background_stop)) for loop_ in (*background, pulse.run)
    ]
    log.info("service started", extra={"fields": {"topics": service.consumers.topics}})
    # Last to start, first to stop: an endpoint that answers means a service that runs.
    stop_metrics = metrics.serve_metrics(
        service.settings.metrics_port,
        pulse=pulse,
        stall_limit_s=service.settings.liveness_stall_s,
    )
    try:
        yield
    finally:
        log.info("shutting down: draining in-flight messages")
        stop_metrics()
        service.stop.set()  # handlers waiting out a retry backoff give up their message
        background_stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        # Both steps below wait on the broker: closing a consumer commits and leaves its
        # group, the relay may be inside a Kafka transaction. A broker that does not answer
        # (a partition, a stalled broker) would hold each of them for request timeouts in
        # turn, or for ever, and the service would ignore SIGTERM until it is killed. Past
        # their deadline they are cancelled: what they leave undone is redone at the next
        # start (redelivery and the inbox; fencing and the ledger), as after a crash.
        await _bounded(
            service.broker.stop(),
            service.settings.kafka_graceful_timeout_s + CLOSE_DEADLINE_S,
            "closing the consumers",
        )
        await _drain_outbox(service, deadline_s=5.0)
        relay_stop.set()
        await _bounded(relay_task, CLOSE_DEADLINE_S, "stopping the outbox relay")
        await _bounded(sampler, CLOSE_DEADLINE_S, "stopping the outbox metrics")
        await service.engine.dispose()
        await service.fleet.close()
        stop_tracing()
        log.info("service stopped")


CLOSE_DEADLINE_S = 5.0
"""How long a shutdown step that waits on the broker may take beyond its own work."""


async def _bounded(
    step: Coroutine[Any, Any, None] | asyncio.Task[None], deadline_s: float, what: str
) -> None:
    """Awaits ``step`` for at most ``deadline_s``, then cancels it and goes on. Cancelled
    again if it waits once more while unwinding (a client's close flushing to the broker),
    a few times at most: a shutdown must end."""
    task = step if isinstance(step, asyncio.Task) else asyncio.ensure_future(step)
    done, _ = await asyncio.wait({task}, timeout=deadline_s)
    if done:
        task.result()
        return
    log.warning(
        "shutdown step overran its deadline; cancelled (is the broker reachable?)",
        extra={"fields": {"step": what, "deadline_s": deadline_s}},
    )
    for _ in range(5):
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=1.0)
        if done:
            return
    log.error("shutdown step would not stop; left behind", extra={"fields": {"step": what}})


OUTBOX_SAMPLE_S = 5.0
"""How often the outbox's backlog metrics are read from the database."""


async def _sample_outbox(service: Service, stop: asyncio.Event) -> None:
    """The outbox's backlog and the age of its oldest row, as metrics. Apart from the relay:
    when the broker is down the relay is stuck, and that is when the numbers matter."""

    async def read() -> tuple[int, datetime | None]:
        async with service.sessions() as session:
            return await outbox.backlog(session)

    def apply(backlog: tuple[int, datetime | None], _: None) -> None:
        pending, oldest = backlog
        metrics.OUTBOX_PENDING.set(pending)
        age = (datetime.now(UTC) - oldest).total_seconds() if oldest else 0.0
        metrics.OUTBOX_OLDEST_AGE.set(max(age, 0.0))

    await refresh_every(OUTBOX_SAMPLE_S, stop, read, apply, None, what="reading the outbox backlog")


async def _drain_outbox(service: Service, deadline_s: float) -> None:
    service.relay.notify()
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        async with service.sessions() as session:
            if await outbox.pending_count(session) == 0:
                return
        await asyncio.sleep(0.05)
    log.warning("stopping with unpublished outbox rows; the next start publishes them")
