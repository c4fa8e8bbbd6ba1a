"""The epics stage: its worker, the expansion of a run into epics, its handlers (module
functions taking the StageApp), and ``build``, which wires them to their topics."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.backlog import Provenance, Requirement
from contracts.events import (
    CardAnalyzed,
    EpicGenerated,
    EpicsRequested,
    ErrorCode,
    PlannedItem,
    RunOptions,
    StoriesRequested,
)
from contracts.topics import CARDS_ANALYZED, EPICS_GENERATED, EPICS_REQUESTED, STORIES_REQUESTED
from services.epics import llm_grouping, logic, store
from services.epics.grouping import restatements_together
from services.runtime.delivery import HandlerContext
from services.runtime.llm import LLMClient, LLMError, LLMResult
from services.runtime.locks import lock_names
from services.runtime.migrate import MigrationHistory
from services.runtime.outbox import enqueue
from services.runtime.stage import StageApp
from services.runtime.text import stable_id
from services.runtime.work import Committed, ItemFailure, NewItem, WorkItem, WorkRun

MIGRATIONS = MigrationHistory("epics", Path(__file__).parent / "migrations")

log = logging.getLogger(__name__)

Outcome = tuple[list[logic.AnalysedCard], list[Requirement], LLMResult[Any]]


@dataclass(frozen=True, slots=True)
class Grouped:
    """What the grouping item found: the epics to plan, and what asking cost."""

    groups: list[logic.Grouping]
    provenance: Provenance


@dataclass
class EpicsWorker:
    llm: LLMClient
    stage: StageApp

    async def process(self, item: WorkItem, on_tokens: Any) -> Outcome | Grouped:
        if item.payload.get("kind") == GROUPING:
            return await self._group(item, on_tokens)
        card_ids = list(item.payload["card_ids"])
        requirement_ids = list(item.payload.get("requirement_ids", ()))
        async with self.stage.sessions() as session:
            found = await store.analysed(session, card_ids)
        if len(found) != len(card_ids):
            raise ItemFailure(ErrorCode.INTERNAL, "an analysed card of this epic is missing")
        cards = [found[c][0] for c in card_ids]
        requirements = logic.covered(cards, requirement_ids)
        if len(requirements) != len(requirement_ids):
            raise ItemFailure(ErrorCode.INTERNAL, "a requirement of this epic is missing")
        request = logic.llm_request(item.title, cards, requirements)
        return cards, requirements, await self.llm.generate(request, on_tokens=on_tokens)

    async def _group(self, item: WorkItem, on_tokens: Any) -> Grouped:
        async with self.stage.sessions() as session:
            found = await store.analysed(session, item.run.scope)
        cards = [card for card, _ in found.values()]
        final = item.attempts >= self.stage.settings.work_max_attempts
        return await group_by_llm(
            self.llm, item.run.project_id, cards, on_tokens=on_tokens, may_retry=not final
        )

    async def commit(
        self, session: AsyncSession, item: WorkItem, outcome: Outcome | Grouped
    ) -> Committed:
        if isinstance(outcome, Grouped):
            await plan_epics(self.stage, session, item.run, outcome.groups)
            await self.stage.close_run(session, item.run)
            return Committed(outcome.provenance)
        cards, requirements, result = outcome
        run = item.run
        epic = logic.to_epic(
            run.project_id,
            item.item_id,
            int(item.payload["order"]),
            cards,
            requirements,
            result.output,
        )
        supersedes = [str(e) for e in item.payload.get("supersedes", ())]
        await store.save_epic(session, epic, result.provenance, run.run_id)
        await store.supersede(session, run.project_id, supersedes, epic.epic_id)
        generated = EpicGenerated(epic=epic, provenance=result.provenance, supersedes=supersedes)
        await enqueue(
            session, EPICS_GENERATED.name, self.stage.event(run, generated, key=epic.epic_id)
        )
        if run.pipeline:
            # Streaming: this epic's stories start now, without waiting for its siblings.
            command = StoriesRequested(
                run_id=run.run_id,
                project_id=run.project_id,
                epics=[epic],
                pipeline=True,
                complete=False,
                options=RunOptions.model_validate(run.options),
            )
            # Keyed by run, like the closing command below: one partition, so the stories
            # service sees every epic of the run before the command that closes the run.
            await enqueue(
                session, STORIES_REQUESTED.name, self.stage.event(run, command, key=run.run_id)
            )
        return Committed(result.provenance, [PlannedItem(item_id=epic.epic_id, title=epic.title)])

    async def run_finished(self, session: AsyncSession, run: WorkRun) -> None:
        """Each epic started its stories when it was generated; in a pipeline, what is left
        is to tell the stories stage that no more epics will come, so its run can finish."""
        if not run.pipeline:
            return
        close = StoriesRequested(
            run_id=run.run_id,
            project_id=run.project_id,
            epics=[],
            pipeline=True,
            complete=True,
            options=RunOptions.model_validate(run.options),
        )
        await enqueue(session, STORIES_REQUESTED.name, self.stage.event(run, close, key=run.run_id))


async def group_by_llm(
    llm: LLMClient,
    project_id: str,
    cards: list[logic.AnalysedCard],
    *,
    on_tokens: Any = None,
    may_retry: bool = False,
) -> Grouped:
    """The scope grouped by the LLM; by the document's structure when the call fails for
    good or its answer breaks the rules. A transient failure is raised instead while
    ``may_retry``: the work queue, the one owner of retries, tries the item again."""
    structure = await _groups(project_id, cards)
    listed = llm_grouping.listing(logic.in_scope(cards))
    request = llm_grouping.llm_request(listed, structure)
    try:
        result = await llm.generate(request, on_tokens=on_tokens)
    except LLMError as error:
        if error.retryable and may_retry:
            raise
        log.warning(
            "grouping by the LLM failed: epics follow the document's structure",
            extra={"fields": {"error_code": error.code.value, "reason": error.message}},
        )
        spent = Provenance(
            provider=llm.provider,
            model=llm.model_for(request.stage),
            prompt_version=request.prompt_version,
            offline=error.attempts == 0,
            input_tokens=error.input_tokens,
            output_tokens=error.output_tokens,
            cost_usd=error.cost_usd,
            attempts=max(1, error.attempts),
        )
        return Grouped(structure, spent)
    proposed = llm_grouping.to_groupings(project_id, listed, result.output)
    together = restatements_together(project_id, logic.in_scope(cards), proposed)
    return Grouped(together, result.provenance)


GROUPING_TITLE = "Group the requirements into epics"
GROUPING = "grouping"
"""The ``kind`` in the payload of a run's grouping item (epic items have none)."""


def grouping_item_id(run: WorkRun) -> str:
    return stable_id(run.run_id, "epics", GROUPING)


async def _groups(project_id: str, cards: list[logic.AnalysedCard]) -> list[logic.Grouping]:
    # CPU work on user input: off the event loop, so the consumer keeps its heartbeats.
    return await asyncio.to_thread(logic.group, project_id, cards)


async def expand(stage: StageApp, session: AsyncSession, run: WorkRun) -> None:
    """Groups the run's requirements into epics: one item per epic. With an LLM, the
    grouping is an item of its own first (a slow call has no place in a Kafka handler):
    its commit adds the epics (``plan_epics``)."""
    found = await store.analysed(session, run.scope)
    cards = [card for card, _ in found.values()]
    requirements = sum(len(card.analysis.requirements) for card in cards)
    if _by_llm(stage) and llm_grouping.worth_asking(requirements):
        grouping = NewItem(grouping_item_id(run), GROUPING_TITLE, {"kind": GROUPING}, planning=True)
        await stage.queue.add_items(session, run, [grouping])
        return
    await plan_epics(stage, session, run, await _groups(run.project_id, cards))
    await stage.close_run(session, run)


def _by_llm(stage: StageApp) -> bool:
    return stage.settings.epics_grouping == "llm" and not stage.llm.offline


async def plan_epics(
    stage: StageApp, session: AsyncSession, run: WorkRun, groups: list[logic.Grouping]
) -> None:
    """One item per epic. Epics of an earlier grouping of these cards that this one no
    longer has are superseded by the new epics sharing their cards."""
    previous = await store.current_epics(session, run.project_id)
    new_ids = {g.epic_id for g in groups}
    replaced = {
        old: set(old_cards) & set(run.scope)
        for old, old_cards in previous.items()
        if old not in new_ids and set(old_cards) & set(run.scope)
    }
    items = [
        NewItem(
            item_id=g.epic_id,
            title=g.title,
            payload={
                "card_ids": list(g.card_ids),
                "requirement_ids": list(g.requirement_ids),
                "order": order,
                "supersedes": sorted(
                    o for o, shared in replaced.items() if shared & set(g.card_ids)
                ),
            },
        )
        for order, g in enumerate(groups)
    ]
    await stage.queue.add_items(session, run, items)


async def on_card_analyzed(stage: StageApp, ctx: HandlerContext) -> None:
    """Stores this service's copy of an analysis; a run that waited for this version of it,
    and for nothing else now, is expanded into its epics."""
    event = CardAnalyzed.model_validate(ctx.envelope.data)
    await lock_names(ctx.session, [f"analysis:{event.card_id}"])
    card = logic.AnalysedCard(event.card_id, event.title, event.analysis, event.position)
    await store.save_analysed_card(ctx.session, event.project_id, card, event.analysis_version)
    arrived = await store.analysis_arrived(ctx.session, event.card_id, event.analysis_version)
    for run_id in arrived:
        if await store.still_awaited(ctx.session, run_id) == 0:
            run = await stage.queue.get_run(ctx.session, run_id)
            if run is not None:
                await expand(stage, ctx.session, run)


async def on_epics_requested(stage: StageApp, ctx: HandlerContext) -> None:
    """Opens the run over its cards; expands it now if every analysis it names is here,
    else records the ones it waits for (``on_card_analyzed`` expands it)."""
    command = EpicsRequested.model_validate(ctx.envelope.data)
    wanted = [c.card_id for c in command.cards]
    run = await stage.open_run(
        ctx,
        command.run_id,
        command.project_id,
        command.pipeline,
        command.options.model_dump(mode="json"),
        scope=wanted,
    )
    # Serialised with on_card_analyzed per card: neither may miss the other's write.
    await lock_names(ctx.session, [f"analysis:{c}" for c in wanted])
    known = await store.analysed(ctx.session, wanted)
    # Epics need every analysis of the scope: wait for those not seen yet (cards.analyzed
    # and this command travel on different topics, so either may come first).
    # Only the version the command names will do: another one here (or arriving) may be an
    # analysis from before the card was edited.
    missing = {
        c.card_id: c.analysis_version
        for c in command.cards
        if c.card_id not in known or known[c.card_id][1] != c.analysis_version
    }
    if missing:
        await store.await_analyses(ctx.session, run.run_id, missing)
    else:
        await expand(stage, ctx.session, run)


def build(stage: StageApp) -> None:
    stage.set_worker(EpicsWorker(stage.llm, stage))
    stage.consume(CARDS_ANALYZED.name, partial(on_card_analyzed, stage), {CardAnalyzed.TYPE: {1}})
    stage.consume(
        EPICS_REQUESTED.name, partial(on_epics_requested, stage), {EpicsRequested.TYPE: {1}}
    )
