"""The stories service in process: a pipeline's streamed commands (one epic each) and the one
closing the run, what they put in the outbox, cancels (of waiting and of running items) and
redeliveries."""

from __future__ import annotations

from contracts.backlog import Epic, Story
from contracts.envelope import Envelope
from contracts.events import (
    Stage,
    StoriesGenerated,
    StoriesRequested,
    SubtasksRequested,
)
from contracts.pipeline import ItemState
from contracts.topics import RUNS_CONTROL, STORIES_GENERATED, STORIES_REQUESTED, SUBTASKS_REQUESTED
from services.stories import store
from tests.stages.conftest import OpenStage
from tests.stages.harness import analysed, cancel, card, command, epics_of, stored, stories_of

SIGN_IN = card(
    "c1",
    "- Users must log in with email and password.\n"
    "- The session must expire after 30 minutes idle.\n"
    "- Five failed logins must lock the account.\n"
    "- Users can sign out from every device.",
    title="Sign in",
)
BILLING = card(
    "c2",
    "- Admins need a monthly invoice export as CSV.\n"
    "- Invoices must show tax per line.\n"
    "- Customers can download past invoices as PDF.\n"
    "- Refunds must appear on the next invoice.",
    title="Billing",
    position=1,
)


async def two_epics() -> list[Epic]:
    epics = await epics_of([await analysed(SIGN_IN), await analysed(BILLING)])
    assert len(epics) == 2
    return epics


def stories_requested(
    run_id: str, epics: list[Epic], *, complete: bool, pipeline: bool = True
) -> Envelope:
    request = StoriesRequested(
        run_id=run_id, project_id="p1", epics=epics, pipeline=pipeline, complete=complete
    )
    return command(request, run_id)


async def test_a_streamed_pipeline_runs_each_epic_and_the_closing_command_ends_the_run(
    open_stage: OpenStage,
) -> None:
    first, second = await two_epics()
    async with open_stage(Stage.STORIES) as stories:
        await stories.send(STORIES_REQUESTED, stories_requested("r1", [first], complete=False))
        await stories.until(
            lambda: stories.item_is("r1", first.epic_id, ItemState.SUCCEEDED), "first epic done"
        )
        # Streaming: the first epic's stories, and its subtasks command, are out already;
        # the run stays open for more epics.
        [generated] = await stories.emitted(STORIES_GENERATED, StoriesGenerated)
        expected = [s.story for s in await stories_of(first)]
        assert generated.epic_id == first.epic_id
        assert generated.stories == expected
        [streamed] = await stories.emitted(SUBTASKS_REQUESTED, SubtasksRequested)
        assert streamed.complete is False
        assert streamed.stories == await stories_of(first)
        run = await stories.run("r1")
        assert run is not None
        assert run.state.value == "open"
        assert "stage_finished" not in await stories.progress_kinds("r1")

        await stories.send(STORIES_REQUESTED, stories_requested("r1", [second], complete=False))
        await stories.send(STORIES_REQUESTED, stories_requested("r1", [], complete=True))
        await stories.until_finished("r1")

        assert await stories.item_states("r1") == {
            first.epic_id: ItemState.SUCCEEDED,
            second.epic_id: ItemState.SUCCEEDED,
        }
        rows = await stories.rows(store.stories)
        wanted = [s.story for e in (first, second) for s in await stories_of(e)]
        assert sorted(
            (stored(r, "story", Story) for r in rows), key=lambda s: s.story_id
        ) == sorted(wanted, key=lambda s: s.story_id)
        assert {r.run_id for r in rows} == {"r1"}
        # One subtasks command per epic, keyed by run, then the one closing the run, last.
        commands = await stories.emitted(SUBTASKS_REQUESTED, SubtasksRequested, run_id="r1")
        assert [c.complete for c in commands] == [False, False, True]
        assert commands[1].stories == await stories_of(second)
        assert commands[2].stories == []
        assert {s.envelope.key for s in await stories.outbox(SUBTASKS_REQUESTED)} == {"r1"}
        assert (await stories.progress_kinds("r1"))[-1] == "stage_finished"


async def test_a_redelivered_command_changes_nothing(open_stage: OpenStage) -> None:
    """Two things make it so here: the inbox, and the queue adding no item twice (the
    command carries its items); the test checks the outcome, not which one did it."""
    first, _ = await two_epics()
    async with open_stage(Stage.STORIES) as stories:
        streamed = stories_requested("r1", [first], complete=False)
        closing = stories_requested("r1", [], complete=True)
        await stories.send(STORIES_REQUESTED, streamed)
        await stories.send(STORIES_REQUESTED, closing)
        await stories.until_finished("r1")
        before = await stories.snapshot()

        await stories.send(STORIES_REQUESTED, streamed)
        await stories.send(STORIES_REQUESTED, closing)

        assert await stories.inbox_count() == 2
        assert await stories.snapshot() == before


async def test_a_cancel_stops_the_pending_items_and_no_subtasks_command_follows(
    open_stage: OpenStage,
) -> None:
    first, second = await two_epics()
    async with open_stage(Stage.STORIES, run_items=False) as stories:
        await stories.send(
            STORIES_REQUESTED, stories_requested("r1", [first, second], complete=False)
        )
        assert set((await stories.item_states("r1")).values()) == {ItemState.PENDING}

        await stories.send(RUNS_CONTROL, cancel("r1"))
        await stories.send(STORIES_REQUESTED, stories_requested("r1", [], complete=True))
        stories.start_items()

        assert await stories.item_states("r1") == {
            first.epic_id: ItemState.CANCELLED,
            second.epic_id: ItemState.CANCELLED,
        }
        assert await stories.progress_kinds("r1") == [
            "items_planned",
            "item_cancelled",
            "item_cancelled",
            "stage_finished",
        ]
        # The runner claims nothing of a cancelled run; its stop drains what it holds.
        await stories.stop_items()
        assert await stories.rows(store.stories) == []
        assert await stories.outbox(STORIES_GENERATED) == []
        assert await stories.outbox(SUBTASKS_REQUESTED) == []


async def test_a_cancel_stops_a_running_item_at_its_next_heartbeat(open_stage: OpenStage) -> None:
    first, _ = await two_epics()
    # A slow offline model: the item is mid-call when the cancel comes.
    async with open_stage(Stage.STORIES, llm_offline_latency_s=30.0) as stories:
        await stories.send(STORIES_REQUESTED, stories_requested("r1", [first], complete=True))
        await stories.until(
            lambda: stories.item_is("r1", first.epic_id, ItemState.RUNNING), "the item running"
        )

        await stories.send(RUNS_CONTROL, cancel("r1"))
        await stories.until(
            lambda: stories.item_is("r1", first.epic_id, ItemState.CANCELLED),
            "the running item cancelled",
            timeout=5.0,
        )
        await stories.until_finished("r1")
        kinds = await stories.progress_kinds("r1")
        assert kinds == ["items_planned", "item_started", "item_cancelled", "stage_finished"]
        assert await stories.rows(store.stories) == []
        assert await stories.outbox(STORIES_GENERATED) == []
        assert await stories.outbox(SUBTASKS_REQUESTED) == []
