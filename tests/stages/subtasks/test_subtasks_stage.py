"""The subtasks service in process: a pipeline's streamed commands (one epic's stories each)
and the one closing the run, with the run's options; cancels and redeliveries. The last
stage: it hands nothing on."""

from __future__ import annotations

from contracts.backlog import Subtask, SubtaskKind
from contracts.envelope import Envelope
from contracts.events import (
    RunOptions,
    Stage,
    StoryInContext,
    SubtaskOptions,
    SubtasksGenerated,
    SubtasksRequested,
)
from contracts.pipeline import ItemState
from contracts.topics import RUNS_CONTROL, RUNS_PROGRESS, SUBTASKS_GENERATED, SUBTASKS_REQUESTED
from services.subtasks import store
from tests.stages.conftest import OpenStage
from tests.stages.harness import (
    analysed,
    cancel,
    card,
    command,
    epics_of,
    stored,
    stories_of,
    subtasks_of,
)

SIGN_IN = card(
    "c1",
    "- Users must log in with email and password.\n"
    "- The session must expire after 30 minutes idle.\n"
    "- Five failed logins must lock the account.\n"
    "- Users can sign out from every device.",
    title="Sign in",
)
NO_TESTS_NO_DOCS = SubtaskOptions(
    min_per_story=2, max_per_story=3, include_tests=False, include_docs=False
)


async def stories() -> list[StoryInContext]:
    [epic] = await epics_of([await analysed(SIGN_IN)])
    made = await stories_of(epic)
    assert len(made) >= 2
    return made


def subtasks_requested(
    run_id: str,
    stories: list[StoryInContext],
    *,
    complete: bool,
    options: SubtaskOptions | None = None,
) -> Envelope:
    request = SubtasksRequested(
        run_id=run_id,
        project_id="p1",
        stories=stories,
        pipeline=True,
        complete=complete,
        options=RunOptions(subtasks=options or SubtaskOptions()),
    )
    return command(request, run_id)


async def test_a_streamed_pipeline_runs_each_story_with_the_runs_options_and_closes(
    open_stage: OpenStage,
) -> None:
    first, *rest = await stories()
    async with open_stage(Stage.SUBTASKS) as subtasks:
        streamed = subtasks_requested("r1", [first], complete=False, options=NO_TESTS_NO_DOCS)
        await subtasks.send(SUBTASKS_REQUESTED, streamed)
        await subtasks.until(
            lambda: subtasks.item_is("r1", first.story.story_id, ItemState.SUCCEEDED),
            "the first story's subtasks",
        )
        run = await subtasks.run("r1")
        assert run is not None
        assert run.state.value == "open"

        await subtasks.send(
            SUBTASKS_REQUESTED,
            subtasks_requested("r1", rest, complete=False, options=NO_TESTS_NO_DOCS),
        )
        await subtasks.send(
            SUBTASKS_REQUESTED,
            subtasks_requested("r1", [], complete=True, options=NO_TESTS_NO_DOCS),
        )
        await subtasks.until_finished("r1")

        everyone = [first, *rest]
        assert await subtasks.item_states("r1") == {
            s.story.story_id: ItemState.SUCCEEDED for s in everyone
        }
        generated = await subtasks.emitted(SUBTASKS_GENERATED, SubtasksGenerated, run_id="r1")
        assert {g.story_id: g.subtasks for g in generated} == {
            s.story.story_id: await subtasks_of(s, NO_TESTS_NO_DOCS) for s in everyone
        }
        rows = await subtasks.rows(store.subtasks)
        made = [stored(r, "subtask", Subtask) for r in rows]
        assert sorted(made, key=lambda t: t.subtask_id) == sorted(
            (t for g in generated for t in g.subtasks), key=lambda t: t.subtask_id
        )
        # The run's options, recorded by the first command, reached every item.
        for g in generated:
            assert 2 <= len(g.subtasks) <= 3
            assert {t.kind for t in g.subtasks}.isdisjoint({SubtaskKind.TEST, SubtaskKind.DOCS})
        # The last stage: subtasks and progress, nothing else.
        assert {s.topic for s in await subtasks.outbox()} == {
            SUBTASKS_GENERATED.name,
            RUNS_PROGRESS.name,
        }
        assert (await subtasks.progress_kinds("r1"))[-1] == "stage_finished"


async def test_a_redelivered_command_changes_nothing(open_stage: OpenStage) -> None:
    """Two things make it so here: the inbox, and the queue adding no item twice (the
    command carries its items); the test checks the outcome, not which one did it."""
    first, *_ = await stories()
    async with open_stage(Stage.SUBTASKS) as subtasks:
        deliveries = [
            subtasks_requested("r1", [first], complete=False),
            subtasks_requested("r1", [], complete=True),
        ]
        for envelope in deliveries:
            await subtasks.send(SUBTASKS_REQUESTED, envelope)
        await subtasks.until_finished("r1")
        before = await subtasks.snapshot()

        for envelope in deliveries:
            await subtasks.send(SUBTASKS_REQUESTED, envelope)

        assert await subtasks.inbox_count() == 2
        assert await subtasks.snapshot() == before


async def test_a_cancel_stops_the_pending_items(open_stage: OpenStage) -> None:
    made = await stories()
    async with open_stage(Stage.SUBTASKS, run_items=False) as subtasks:
        await subtasks.send(SUBTASKS_REQUESTED, subtasks_requested("r1", made, complete=False))
        await subtasks.send(RUNS_CONTROL, cancel("r1"))
        subtasks.start_items()

        assert await subtasks.item_states("r1") == {
            s.story.story_id: ItemState.CANCELLED for s in made
        }
        assert await subtasks.progress_kinds("r1") == [
            "items_planned",
            *["item_cancelled"] * len(made),
            "stage_finished",
        ]
        # Stories streamed in after the cancel are recorded cancelled, never worked.
        late = made[0].model_copy(
            update={"story": made[0].story.model_copy(update={"story_id": "late-story"})}
        )
        await subtasks.send(SUBTASKS_REQUESTED, subtasks_requested("r1", [late], complete=True))
        assert (await subtasks.item_states("r1"))["late-story"] is ItemState.CANCELLED
        await subtasks.stop_items()
        assert await subtasks.rows(store.subtasks) == []
        assert await subtasks.outbox(SUBTASKS_GENERATED) == []
