"""The analysis service in process: its items wait for their card's copy, analyses land in
its table and on cards.analyzed, a pipeline run hands on to epics, cancels and redeliveries."""

from __future__ import annotations

from contracts.events import AnalysisRequested, CardAnalyzed, EpicsRequested, Stage
from contracts.pipeline import ItemState
from contracts.topics import (
    ANALYSIS_REQUESTED,
    CARDS_ANALYZED,
    CARDS_SUBMITTED,
    EPICS_REQUESTED,
    RUNS_CONTROL,
)
from services.analysis import store
from services.analysis.app import wait_key
from services.runtime.work.tables import work_items
from tests.stages.conftest import OpenStage
from tests.stages.harness import analysed, cancel, card, card_submitted, command

LOGIN = card(
    "c1", "Users must be able to log in with email.\nThe session must expire after 30 minutes."
)
RESET = card("c2", "Users should reset a forgotten password by email link.", position=1)


def analysis_requested(run_id: str, *cards: str, pipeline: bool = True) -> AnalysisRequested:
    return AnalysisRequested(
        run_id=run_id, project_id="p1", card_ids=list(cards), pipeline=pipeline
    )


async def test_an_item_waits_for_its_card_and_runs_when_the_card_arrives(
    open_stage: OpenStage,
) -> None:
    async with open_stage(Stage.ANALYSIS) as analysis:
        await analysis.send(CARDS_SUBMITTED, card_submitted(LOGIN))
        await analysis.send(ANALYSIS_REQUESTED, command(analysis_requested("r1", "c1", "c2"), "r1"))
        await analysis.until(
            lambda: analysis.item_is("r1", "c1", ItemState.SUCCEEDED), "c1 analysed"
        )
        # c2's copy has not come: its item waits (under its card's key), the run is open.
        items = {r.item_id: r for r in await analysis.rows(work_items)}
        assert items["c2"].state == ItemState.WAITING.value
        assert items["c2"].wait_key == wait_key("c2")
        assert items["c2"].attempts == 0
        assert await analysis.emitted(EPICS_REQUESTED, EpicsRequested) == []

        await analysis.send(CARDS_SUBMITTED, card_submitted(RESET))
        await analysis.until_finished("r1")

        assert await analysis.item_states("r1") == {
            "c1": ItemState.SUCCEEDED,
            "c2": ItemState.SUCCEEDED,
        }
        # Each analysis is the stage's own offline analysis of the card, stored and emitted.
        expected = {c.card_id: await analysed(c) for c in (LOGIN, RESET)}
        emitted = await analysis.emitted(CARDS_ANALYZED, CardAnalyzed, run_id="r1")
        assert {e.card_id: e.analysis for e in emitted} == {
            k: v.analysis for k, v in expected.items()
        }
        results = {r.card_id: r for r in await analysis.rows(store.analyses)}
        assert {k: r.analysis_version for k, r in results.items()} == {
            k: v.analysis_version for k, v in expected.items()
        }
        assert {k: store.load_analysis(r.analysis) for k, r in results.items()} == {
            k: v.analysis for k, v in expected.items()
        }
        # The pipeline goes on: one epics command naming both analyses, in card order.
        [handed_on] = await analysis.emitted(EPICS_REQUESTED, EpicsRequested)
        assert handed_on.run_id == "r1"
        assert handed_on.pipeline is True
        assert [(c.card_id, c.analysis_version) for c in handed_on.cards] == [
            ("c1", expected["c1"].analysis_version),
            ("c2", expected["c2"].analysis_version),
        ]
        kinds = await analysis.progress_kinds("r1", item_id="c2")
        assert kinds == ["item_started", "item_succeeded"]


async def test_a_run_that_is_not_a_pipeline_hands_nothing_on(open_stage: OpenStage) -> None:
    async with open_stage(Stage.ANALYSIS) as analysis:
        await analysis.send(CARDS_SUBMITTED, card_submitted(LOGIN))
        request = analysis_requested("r1", "c1", pipeline=False)
        await analysis.send(ANALYSIS_REQUESTED, command(request, "r1"))
        await analysis.until_finished("r1")
        assert [e.card_id for e in await analysis.emitted(CARDS_ANALYZED, CardAnalyzed)] == ["c1"]
        assert await analysis.emitted(EPICS_REQUESTED, EpicsRequested) == []
        assert (await analysis.progress_kinds("r1"))[-1] == "stage_finished"


async def test_a_redelivered_envelope_changes_nothing(open_stage: OpenStage) -> None:
    async with open_stage(Stage.ANALYSIS) as analysis:
        submitted = card_submitted(LOGIN)
        edited = card_submitted(card("c1", "Users must be able to log in with a passkey."))
        requested = command(analysis_requested("r1", "c1"), "r1")
        await analysis.send(CARDS_SUBMITTED, submitted)
        await analysis.send(CARDS_SUBMITTED, edited)
        await analysis.send(ANALYSIS_REQUESTED, requested)
        await analysis.until_finished("r1")
        before = await analysis.snapshot()

        # The same envelopes again (same ids), as after a crash before the offset commit.
        # Handled again, the first would put the card's copy back to its text before the edit.
        await analysis.send(CARDS_SUBMITTED, submitted)
        await analysis.send(ANALYSIS_REQUESTED, requested)

        assert await analysis.inbox_count() == 3
        assert await analysis.snapshot() == before
        [copy] = await analysis.rows(store.cards)
        assert copy.body == "Users must be able to log in with a passkey."


async def test_a_cancel_stops_the_waiting_items_and_hands_nothing_on(
    open_stage: OpenStage,
) -> None:
    async with open_stage(Stage.ANALYSIS) as analysis:
        await analysis.send(ANALYSIS_REQUESTED, command(analysis_requested("r1", "c1"), "r1"))
        assert await analysis.item_states("r1") == {"c1": ItemState.WAITING}

        await analysis.send(RUNS_CONTROL, cancel("r1"))

        assert await analysis.item_states("r1") == {"c1": ItemState.CANCELLED}
        run = await analysis.run("r1")
        assert run is not None
        assert run.cancel_requested
        assert run.state.value == "finished"
        assert await analysis.progress_kinds("r1") == [
            "items_planned",
            "item_cancelled",
            "stage_finished",
        ]
        # The card arriving later is stored but releases nothing (a released item would be
        # pending or further now: the release is part of the handler's transaction).
        await analysis.send(CARDS_SUBMITTED, card_submitted(LOGIN))
        assert [r.card_id for r in await analysis.rows(store.cards)] == ["c1"]
        assert await analysis.item_states("r1") == {"c1": ItemState.CANCELLED}
        assert await analysis.rows(store.analyses) == []
        assert await analysis.emitted(CARDS_ANALYZED, CardAnalyzed) == []
        assert await analysis.emitted(EPICS_REQUESTED, EpicsRequested) == []
