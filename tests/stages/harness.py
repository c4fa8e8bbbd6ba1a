"""An in-process harness for one stage service: the real StageApp (its handlers, the delivery
wrapper, the work queue, the item runner, the offline LLM provider) on a SQLite file, with
FastStream's in-memory test broker in place of Kafka.

``send`` publishes an envelope's bytes on the stage's topic; the test broker hands them to
the subscriber the stage registered, so each message goes through ``Consumers.deliver``:
parse, inbox claim, handler, outbox, one transaction. The call returns once that
transaction has committed. Items then run on the real ``ItemRunner`` (started by
``open_stage`` unless ``run_items=False``); wait for them with ``until``/``until_finished``.
What the stage emitted is read back from its outbox (``outbox``, ``emitted``, ``progress``).

Dead letters are caught on the dead-letter topics: an unexpected one fails the test at once
with its error code and reason, rather than vanishing in the test broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

from faststream.kafka import KafkaBroker, TestKafkaBroker
from faststream.kafka.annotations import KafkaMessage
from pydantic import BaseModel
from sqlalchemy import Table, func, select, text
from sqlalchemy.engine import Row

from contracts import Envelope, Topic, dead_letter_topic, root_envelope
from contracts.backlog import Epic, Subtask
from contracts.events import (
    AnalysedCardRef,
    CardAnalyzed,
    CardSubmitted,
    ControlAction,
    RunControl,
    RunProgress,
    Stage,
    StoryInContext,
    SubtaskOptions,
)
from contracts.topics import RUNS_PROGRESS
from services.analysis import app as analysis_app
from services.analysis import logic as analysis_logic
from services.analysis.analyse import analyse
from services.epics import app as epics_app
from services.epics import logic as epics_logic
from services.runtime.llm import LLMClient, OfflineProvider
from services.runtime.migrate import migrate
from services.runtime.settings import Settings
from services.runtime.stage import StageApp
from services.runtime.tables import inbox, outbox
from services.runtime.work import ItemState, WorkRun
from services.stories import app as stories_app
from services.stories import logic as stories_logic
from services.subtasks import app as subtasks_app
from services.subtasks import logic as subtasks_logic
from tests.support import wait
from tests.support.infra import sqlite_url

T = TypeVar("T")

STAGE_APPS: dict[Stage, ModuleType] = {
    Stage.ANALYSIS: analysis_app,
    Stage.EPICS: epics_app,
    Stage.STORIES: stories_app,
    Stage.SUBTASKS: subtasks_app,
}
"""Each stage's app module: its ``build`` and ``MIGRATIONS``."""

TENANT = "t1"
PROJECT = "p1"
GATEWAY = "gateway"
TIMEOUT_S = 15.0
"""Deadline of a wait: generous for 2 busy cores; an item of the offline provider takes ms."""


@dataclass(frozen=True, slots=True)
class Sent:
    """One outbox row: where the relay would publish it, and the envelope."""

    seq: int
    topic: str
    envelope: Envelope


@dataclass(frozen=True, slots=True)
class DeadLetter:
    topic: str
    code: str
    reason: str


class UnexpectedDeadLetter(AssertionError):
    pass


def stage_settings(tmp_path: Path, stage: Stage, **overrides: Any) -> Settings:
    """Settings of a stage under test: its own SQLite file, the offline provider, short
    polls and backoffs. Given explicitly, so no ``CARDFLOW_*`` variable of the environment
    (an LLM endpoint, a database) leaks in."""
    values: dict[str, Any] = {
        "service_name": stage.value,
        "instance_id": "test",
        "state_dir": tmp_path,
        "database_url": sqlite_url(tmp_path / f"{stage.value}.db"),
        "fleet_database_url": None,
        "kafka_topic_prefix": "",
        "llm_base_url": None,
        "llm_offline_latency_s": 0.0,
        "handler_retry_base_s": 0.01,
        "handler_retry_max_s": 0.05,
        "work_poll_interval_s": 0.05,
        "work_heartbeat_s": 0.1,
        "work_retry_base_s": 0.05,
        "work_retry_max_s": 0.2,
        "work_drain_timeout_s": 1.0,
        "log_format": "text",
    }
    values.update(overrides)
    return Settings(**values)


@dataclass
class StageHarness:
    app: StageApp
    broker: KafkaBroker
    dead_letters: list[DeadLetter] = field(default_factory=list)
    _runner: asyncio.Task[None] | None = None
    _runner_stop: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def settings(self) -> Settings:
        return self.app.settings

    # --- in ----------------------------------------------------------------------------

    async def send(
        self, topic: Topic, envelope: Envelope, *, dead_letter_expected: bool = False
    ) -> None:
        """Delivers ``envelope`` on ``topic`` (as the relay would publish it) and returns when
        the stage's handler transaction has committed, or the message was dead-lettered."""
        before = len(self.dead_letters)
        await self.broker.publish(
            envelope.to_bytes(),
            topic=self.settings.topic(topic.name),
            key=envelope.key.encode(),
            headers={"ce_id": envelope.id, "ce_type": envelope.type},
        )
        new = self.dead_letters[before:]
        if new and not dead_letter_expected:
            raise UnexpectedDeadLetter(f"{envelope.type} was dead-lettered: {new}")

    # --- out ---------------------------------------------------------------------------

    async def outbox(self, topic: Topic | None = None, *, run_id: str | None = None) -> list[Sent]:
        """The outbox rows in order, those of ``topic`` (and ``run_id``) when given."""
        statement = select(outbox.c.seq, outbox.c.topic, outbox.c.payload).order_by(outbox.c.seq)
        if topic is not None:
            statement = statement.where(outbox.c.topic == topic.name)
        async with self.app.sessions() as session:
            rows = (await session.execute(statement)).all()
        sent = [Sent(r.seq, r.topic, Envelope.from_bytes(bytes(r.payload))) for r in rows]
        return [s for s in sent if run_id is None or s.envelope.run_id == run_id]

    async def emitted(self, topic: Topic, model: type[T], *, run_id: str | None = None) -> list[T]:
        """The payloads of ``topic``'s outbox rows, as ``model``."""
        validate: Callable[[Any], T] = model.model_validate  # type: ignore[attr-defined]
        return [validate(s.envelope.data) for s in await self.outbox(topic, run_id=run_id)]

    async def progress(self, run_id: str) -> list[RunProgress]:
        return await self.emitted(RUNS_PROGRESS, RunProgress, run_id=run_id)

    async def progress_kinds(self, run_id: str, *, item_id: str | None = None) -> list[str]:
        """The kinds of the run's progress events (of one item when given), heartbeats left
        out (their number depends on timing)."""
        return [
            p.kind.value
            for p in await self.progress(run_id)
            if p.kind.value != "item_heartbeat" and (item_id is None or p.item_id == item_id)
        ]

    async def rows(self, table: Table) -> list[Row[Any]]:
        async with self.app.sessions() as session:
            return list((await session.execute(select(table))).all())

    async def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table of the stage's database (migration versions aside), to
        show that something changed nothing."""
        async with self.app.sessions() as session:
            names = (
                await session.execute(
                    text("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
                )
            ).scalars()
            tables = [n for n in names if not n.endswith("alembic_version")]
            return {
                name: sorted(
                    (tuple(row) for row in await session.execute(text(f'SELECT * FROM "{name}"'))),
                    key=repr,
                )
                for name in tables
            }

    async def inbox_count(self) -> int:
        async with self.app.sessions() as session:
            statement = select(func.count()).select_from(inbox)
            return int((await session.execute(statement)).scalar_one())

    async def item_states(self, run_id: str) -> dict[str, ItemState]:
        async with self.app.sessions() as session:
            return await self.app.queue.item_states(session, run_id)

    async def item_is(self, run_id: str, item_id: str, state: ItemState) -> bool:
        return (await self.item_states(run_id)).get(item_id) is state

    async def run(self, run_id: str) -> WorkRun | None:
        async with self.app.sessions() as session:
            return await self.app.queue.get_run(session, run_id)

    # --- waiting -----------------------------------------------------------------------

    async def until(
        self, probe: Callable[[], Awaitable[T] | T], what: str, timeout: float = TIMEOUT_S
    ) -> T:
        return await wait.until(probe, timeout=timeout, what=what, interval=0.02)

    async def until_finished(self, run_id: str, timeout: float = TIMEOUT_S) -> WorkRun:
        """Waits for the stage's part of the run to finish (every item terminal, closed)."""

        async def finished() -> WorkRun | None:
            run = await self.run(run_id)
            return run if run is not None and run.state.value == "finished" else None

        return await self.until(finished, f"run {run_id} finished", timeout)

    # --- the item runner ---------------------------------------------------------------

    def start_items(self) -> None:
        """Starts the stage's ItemRunner, as the service does beside its consumers."""
        assert self._runner is None, "the runner is running"
        assert self.app.runner is not None
        self._runner_stop = asyncio.Event()
        self._runner = asyncio.create_task(self.app.runner.run(self._runner_stop))

    async def stop_items(self) -> None:
        if self._runner is None:
            return
        self._runner_stop.set()
        runner, self._runner = self._runner, None
        await asyncio.wait_for(runner, TIMEOUT_S)


@contextlib.asynccontextmanager
async def open_stage(
    tmp_path: Path, stage: Stage, *, run_items: bool = True, **settings: Any
) -> AsyncIterator[StageHarness]:
    """The stage's real StageApp, built by its ``build``, migrated, on the test broker."""
    module = STAGE_APPS[stage]
    app = StageApp(stage_settings(tmp_path, stage, **settings), stage, [module.MIGRATIONS])
    module.build(app)
    service = app.service
    dead_letters: list[DeadLetter] = []

    def catch(topic: str) -> Callable[[KafkaMessage], Awaitable[None]]:
        async def caught(message: KafkaMessage) -> None:
            headers = {k: v.decode() for k, v in message.raw_message.headers}
            letter = DeadLetter(topic, headers["dlq_error_code"], headers["dlq_error_message"])
            dead_letters.append(letter)

        return caught

    for topic in set(service.consumers.topics):
        physical = app.settings.topic(topic)
        service.broker.subscriber(dead_letter_topic(physical))(catch(physical))
    await migrate(service.engine, *service.migrations)
    await service.fleet.prepare()
    try:
        async with TestKafkaBroker(service.broker) as broker:
            harness = StageHarness(app, broker, dead_letters)
            if run_items:
                harness.start_items()
            try:
                yield harness
            finally:
                await harness.stop_items()
    finally:
        await service.fleet.close()
        await service.engine.dispose()


# --- inputs, built as their producers build them ------------------------------------------


def gateway_event(payload: BaseModel, *, key: str, run_id: str | None = None) -> Envelope:
    """A root event of the gateway's (a card submitted, a command, a control)."""
    return root_envelope(
        type=payload.TYPE,  # type: ignore[attr-defined]
        schema_version=1,
        source=GATEWAY,
        tenant_id=TENANT,
        project_id=PROJECT,
        run_id=run_id,
        key=key,
        data=payload.model_dump(mode="json"),
    )


def command(payload: BaseModel, run_id: str) -> Envelope:
    """A stage command for ``run_id``, keyed by run as every producer keys them."""
    return gateway_event(payload, key=run_id, run_id=run_id)


def cancel(run_id: str) -> Envelope:
    return command(RunControl(run_id=run_id, action=ControlAction.CANCEL), run_id)


def card(card_id: str, body: str, *, title: str | None = None, position: int = 0) -> CardSubmitted:
    return CardSubmitted(
        card_id=card_id,
        project_id=PROJECT,
        title=title or f"Card {card_id}",
        body=body,
        position=position,
    )


def card_submitted(submitted: CardSubmitted) -> Envelope:
    return gateway_event(submitted, key=submitted.card_id)


def offline_llm() -> LLMClient:
    return LLMClient(OfflineProvider(Settings(llm_offline_latency_s=0.0)))


async def analysed(submitted: CardSubmitted) -> CardAnalyzed:
    """The card's analysis as the analysis stage makes it offline (its own functions)."""
    one = analysis_logic.Card(
        submitted.card_id, submitted.project_id, submitted.title, submitted.body, submitted.position
    )
    result = await analyse(offline_llm(), one)
    analysis = analysis_logic.to_analysis(one, result.output)
    return CardAnalyzed(
        card_id=one.card_id,
        project_id=one.project_id,
        title=one.title,
        position=one.position,
        analysis=analysis,
        provenance=result.provenance,
        analysis_version=analysis_logic.analysis_version(analysis),
    )


def analysis_event(event: CardAnalyzed, run_id: str = "run-analysis") -> Envelope:
    """cards.analyzed as the analysis stage emits it: keyed by card, in an analysis run."""
    return root_envelope(
        type=CardAnalyzed.TYPE,
        schema_version=1,
        source="analysis",
        tenant_id=TENANT,
        project_id=PROJECT,
        run_id=run_id,
        key=event.card_id,
        data=event.model_dump(mode="json"),
    )


def refs(events: Iterable[CardAnalyzed]) -> list[AnalysedCardRef]:
    return [AnalysedCardRef(card_id=e.card_id, analysis_version=e.analysis_version) for e in events]


def as_epics_input(events: Iterable[CardAnalyzed]) -> list[epics_logic.AnalysedCard]:
    return [epics_logic.AnalysedCard(e.card_id, e.title, e.analysis, e.position) for e in events]


async def epics_of(events: list[CardAnalyzed]) -> list[Epic]:
    """The epics the epics stage makes of these analyses offline (its own functions)."""
    cards = as_epics_input(events)
    made = []
    for order, grouping in enumerate(epics_logic.group(PROJECT, cards)):
        requirements = epics_logic.covered(cards, grouping.requirement_ids)
        request = epics_logic.llm_request(grouping.title, cards, requirements)
        draft = (await offline_llm().generate(request)).output
        made.append(
            epics_logic.to_epic(PROJECT, grouping.epic_id, order, cards, requirements, draft)
        )
    return made


async def stories_of(epic: Epic) -> list[StoryInContext]:
    """The stories the stories stage makes of ``epic`` offline, in their context."""
    draft = (await offline_llm().generate(stories_logic.llm_request(epic))).output
    return [stories_logic.in_context(epic, s) for s in stories_logic.to_stories(epic, draft)]


async def subtasks_of(story: StoryInContext, options: SubtaskOptions) -> list[Subtask]:
    """The subtasks the subtasks stage makes of ``story`` offline with ``options``."""
    draft = (await offline_llm().generate(subtasks_logic.llm_request(story, options))).output
    return subtasks_logic.to_subtasks(story.story, draft)


def stored(row: Row[Any], column: str, model: type[T]) -> T:
    """A stage table's JSON column as its contract model."""
    return model.model_validate(json.loads(getattr(row, column)))  # type: ignore[attr-defined,no-any-return]
