"""The subtasks stage: its worker, its handler (a module function taking the StageApp), and
``build``, which wires it to its topic."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.backlog import Provenance
from contracts.events import (
    ErrorCode,
    RunOptions,
    StoryInContext,
    SubtaskOptions,
    SubtasksGenerated,
    SubtasksRequested,
)
from contracts.topics import SUBTASKS_GENERATED, SUBTASKS_REQUESTED
from services.runtime.delivery import HandlerContext
from services.runtime.llm import LLMClient, LLMResult
from services.runtime.migrate import MigrationHistory
from services.runtime.outbox import enqueue
from services.runtime.stage import StageApp
from services.runtime.work import ItemFailure, NewItem, WorkItem, WorkRun
from services.subtasks import logic, store

MIGRATIONS = MigrationHistory("subtasks", Path(__file__).parent / "migrations")

Outcome = tuple[StoryInContext, LLMResult[Any]]


def story_of(item: WorkItem) -> StoryInContext:
    try:
        return StoryInContext.model_validate(item.payload)
    except ValidationError as error:
        # Not worth a retry: the same payload fails the same way.
        raise ItemFailure(
            ErrorCode.INPUT_INVALID, f"the item's story is invalid: {error}"
        ) from None


def options_of(run: WorkRun) -> SubtaskOptions:
    """The run's options, recorded by the command that opened it."""
    return RunOptions.model_validate(run.options).subtasks


@dataclass
class SubtasksWorker:
    llm: LLMClient
    stage: StageApp

    async def process(self, item: WorkItem, on_tokens: Any) -> Outcome:
        story = story_of(item)
        options = options_of(item.run)
        request = logic.llm_request(story, options)
        return story, await self.llm.generate(request, on_tokens=on_tokens)

    async def commit(self, session: AsyncSession, item: WorkItem, outcome: Outcome) -> Provenance:
        story_in_context, result = outcome
        story = story_in_context.story
        run = item.run
        subtasks = logic.to_subtasks(story, result.output)
        await store.replace_subtasks(
            session,
            run.project_id,
            story.epic_id,
            story.story_id,
            subtasks,
            result.provenance,
            run.run_id,
        )
        generated = SubtasksGenerated(
            project_id=run.project_id,
            epic_id=story.epic_id,
            story_id=story.story_id,
            subtasks=subtasks,
            provenance=result.provenance,
        )
        await enqueue(
            session, SUBTASKS_GENERATED.name, self.stage.event(run, generated, key=story.story_id)
        )
        return result.provenance

    async def run_finished(self, session: AsyncSession, run: WorkRun) -> None:
        """The last stage: nothing to hand on."""


async def on_subtasks_requested(stage: StageApp, ctx: HandlerContext) -> None:
    """Opens (or adds to) the run: one item per story the command carries."""
    command = SubtasksRequested.model_validate(ctx.envelope.data)
    run = await stage.open_run(
        ctx,
        command.run_id,
        command.project_id,
        command.pipeline,
        command.options.model_dump(mode="json"),
    )
    # The command carries the stories with their context: nothing to wait for.
    items = [
        NewItem(item_id=s.story.story_id, title=s.story.title, payload=s.model_dump(mode="json"))
        for s in command.stories
    ]
    await stage.queue.add_items(ctx.session, run, items)
    # A pipeline sends one command per epic's stories (complete=false): the run stays open.
    if command.complete:
        await stage.close_run(ctx.session, run)


def build(stage: StageApp) -> None:
    stage.set_worker(SubtasksWorker(stage.llm, stage))
    stage.consume(
        SUBTASKS_REQUESTED.name,
        partial(on_subtasks_requested, stage),
        {SubtasksRequested.TYPE: {1}},
    )
