"""The stories stage: its worker, its handler (a module function taking the StageApp), and
``build``, which wires it to its topic."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.backlog import Epic
from contracts.events import (
    ErrorCode,
    PlannedItem,
    RunOptions,
    StoriesGenerated,
    StoriesRequested,
    SubtasksRequested,
)
from contracts.topics import STORIES_GENERATED, STORIES_REQUESTED, SUBTASKS_REQUESTED
from services.runtime.delivery import HandlerContext
from services.runtime.llm import LLMClient, LLMResult
from services.runtime.migrate import MigrationHistory
from services.runtime.outbox import enqueue
from services.runtime.stage import StageApp
from services.runtime.work import Committed, ItemFailure, NewItem, WorkItem, WorkRun
from services.stories import logic, store

MIGRATIONS = MigrationHistory("stories", Path(__file__).parent / "migrations")

Outcome = tuple[Epic, LLMResult[Any]]


def epic_of(item: WorkItem) -> Epic:
    try:
        return Epic.model_validate(item.payload)
    except ValidationError as error:
        # Not worth a retry: the same payload fails the same way.
        raise ItemFailure(ErrorCode.INPUT_INVALID, f"the item's epic is invalid: {error}") from None


@dataclass
class StoriesWorker:
    llm: LLMClient
    stage: StageApp

    async def process(self, item: WorkItem, on_tokens: Any) -> Outcome:
        epic = epic_of(item)
        request = logic.llm_request(epic)
        return epic, await self.llm.generate(request, on_tokens=on_tokens)

    async def commit(self, session: AsyncSession, item: WorkItem, outcome: Outcome) -> Committed:
        epic, result = outcome
        run = item.run
        stories = logic.to_stories(epic, result.output)
        await store.replace_stories(
            session, run.project_id, epic.epic_id, stories, result.provenance, run.run_id
        )
        generated = StoriesGenerated(
            project_id=run.project_id,
            epic_id=epic.epic_id,
            stories=stories,
            provenance=result.provenance,
        )
        await enqueue(
            session, STORIES_GENERATED.name, self.stage.event(run, generated, key=epic.epic_id)
        )
        if run.pipeline:
            # Streaming: this epic's stories start their subtasks now, without waiting for the
            # other epics' stories.
            command = SubtasksRequested(
                run_id=run.run_id,
                project_id=run.project_id,
                stories=[logic.in_context(epic, story) for story in stories],
                pipeline=True,
                complete=False,
                options=RunOptions.model_validate(run.options),
            )
            # Keyed by run, like the closing command in run_finished (one partition: the
            # subtasks service sees every story of the run before the run is closed).
            await enqueue(
                session, SUBTASKS_REQUESTED.name, self.stage.event(run, command, key=run.run_id)
            )
        # Reported with the item's success on the ordered progress topic, so a reader knows
        # the subtasks items of a pipeline before the stories stage can look finished.
        produced = [PlannedItem(item_id=s.story_id, title=s.title) for s in stories]
        return Committed(result.provenance, produced)

    async def run_finished(self, session: AsyncSession, run: WorkRun) -> None:
        """Each epic started its subtasks when its stories were made; in a pipeline, what is
        left is to tell the subtasks stage that no more stories will come."""
        if not run.pipeline:
            return
        close = SubtasksRequested(
            run_id=run.run_id,
            project_id=run.project_id,
            stories=[],
            pipeline=True,
            complete=True,
            options=RunOptions.model_validate(run.options),
        )
        await enqueue(
            session, SUBTASKS_REQUESTED.name, self.stage.event(run, close, key=run.run_id)
        )


async def on_stories_requested(stage: StageApp, ctx: HandlerContext) -> None:
    """Opens (or adds to) the run: one item per epic the command carries."""
    command = StoriesRequested.model_validate(ctx.envelope.data)
    run = await stage.open_run(
        ctx,
        command.run_id,
        command.project_id,
        command.pipeline,
        command.options.model_dump(mode="json"),
    )
    # The command carries the epics themselves: nothing to wait for.
    items = [
        NewItem(item_id=e.epic_id, title=e.title, payload=e.model_dump(mode="json"))
        for e in command.epics
    ]
    await stage.queue.add_items(ctx.session, run, items)
    # A pipeline sends one command per epic as epics are made (complete=false): the run
    # stays open for the next one.
    if command.complete:
        await stage.close_run(ctx.session, run)


def build(stage: StageApp) -> None:
    stage.set_worker(StoriesWorker(stage.llm, stage))
    stage.consume(
        STORIES_REQUESTED.name,
        partial(on_stories_requested, stage),
        {StoriesRequested.TYPE: {1}},
    )
