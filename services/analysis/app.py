"""The analysis stage: its worker, its handlers (module functions taking the StageApp), and
``build``, which wires them to their topics."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.backlog import Provenance
from contracts.events import (
    AnalysedCardRef,
    AnalysisRequested,
    CardAnalyzed,
    CardSubmitted,
    EpicsRequested,
    ErrorCode,
)
from contracts.pipeline import ItemState
from contracts.topics import ANALYSIS_REQUESTED, CARDS_ANALYZED, CARDS_SUBMITTED, EPICS_REQUESTED
from services.analysis import logic, store
from services.analysis.analyse import analyse
from services.runtime.delivery import HandlerContext
from services.runtime.llm import LLMClient, LLMResult
from services.runtime.locks import lock_names
from services.runtime.migrate import MigrationHistory
from services.runtime.outbox import enqueue
from services.runtime.stage import StageApp
from services.runtime.work import ItemFailure, NewItem, WorkItem, WorkRun

MIGRATIONS = MigrationHistory("analysis", Path(__file__).parent / "migrations")
SOURCE = "analysis"


def wait_key(card_id: str) -> str:
    return f"card:{card_id}"


@dataclass
class AnalysisWorker:
    llm: LLMClient
    stage: StageApp

    async def process(self, item: WorkItem, on_tokens: Any) -> tuple[logic.Card, LLMResult[Any]]:
        async with self.stage.sessions() as session:
            card = await store.get_card(session, item.item_id)
        if card is None:
            raise ItemFailure(ErrorCode.INPUT_INVALID, f"card {item.item_id} is unknown here")
        return card, await analyse(self.llm, card, on_tokens)

    async def commit(
        self, session: AsyncSession, item: WorkItem, outcome: tuple[logic.Card, LLMResult[Any]]
    ) -> Provenance:
        card, result = outcome
        analysis = logic.to_analysis(card, result.output)
        version = logic.analysis_version(analysis)
        await store.save_analysis(
            session, analysis, card.project_id, version, result.provenance, item.run.run_id
        )
        event = CardAnalyzed(
            card_id=card.card_id,
            project_id=card.project_id,
            title=card.title,
            position=card.position,
            analysis=analysis,
            provenance=result.provenance,
            analysis_version=version,
        )
        await enqueue(
            session, CARDS_ANALYZED.name, self.stage.event(item.run, event, key=card.card_id)
        )
        return result.provenance

    async def run_finished(self, session: AsyncSession, run: WorkRun) -> None:
        if not run.pipeline:
            return
        states = await self.stage.queue.item_states(session, run.run_id)
        done = [card_id for card_id, state in states.items() if state is ItemState.SUCCEEDED]
        versions = await store.analysis_versions(session, done)
        command = EpicsRequested(
            run_id=run.run_id,
            project_id=run.project_id,
            cards=[AnalysedCardRef(card_id=c, analysis_version=versions[c]) for c in done],
            pipeline=True,
            options=run.options,
        )
        await enqueue(session, EPICS_REQUESTED.name, self.stage.event(run, command, key=run.run_id))


async def on_card_submitted(stage: StageApp, ctx: HandlerContext) -> None:
    """Stores this service's copy of a card and releases the items waiting for it."""
    submitted = CardSubmitted.model_validate(ctx.envelope.data)
    card = logic.Card(
        submitted.card_id,
        submitted.project_id,
        submitted.title,
        submitted.body,
        submitted.position,
        submitted.document,
    )
    await lock_names(ctx.session, [wait_key(card.card_id)])
    await store.save_card(ctx.session, card, ctx.envelope.tenant_id)
    await stage.queue.release(ctx.session, wait_key(card.card_id))


async def on_analysis_requested(stage: StageApp, ctx: HandlerContext) -> None:
    """Opens the run with one item per card, and closes it: the command names them all."""
    command = AnalysisRequested.model_validate(ctx.envelope.data)
    run = await stage.open_run(
        ctx,
        command.run_id,
        command.project_id,
        command.pipeline,
        command.options.model_dump(mode="json"),
    )
    await lock_names(ctx.session, [wait_key(c) for c in command.card_ids])
    titles = await store.card_titles(ctx.session, command.card_ids)
    items = [
        # A card whose copy has not arrived yet waits for its cards.submitted event:
        # the two topics are not ordered with respect to each other.
        NewItem(
            item_id=card_id,
            title=titles.get(card_id, card_id),
            wait_key=None if card_id in titles else wait_key(card_id),
        )
        for card_id in command.card_ids
    ]
    await stage.queue.add_items(ctx.session, run, items)
    await stage.close_run(ctx.session, run)


def build(stage: StageApp) -> None:
    stage.set_worker(AnalysisWorker(stage.llm, stage))
    stage.consume(
        CARDS_SUBMITTED.name, partial(on_card_submitted, stage), {CardSubmitted.TYPE: {1}}
    )
    stage.consume(
        ANALYSIS_REQUESTED.name,
        partial(on_analysis_requested, stage),
        {AnalysisRequested.TYPE: {1}},
    )
