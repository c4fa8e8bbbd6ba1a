"""The epics service in process: the barrier (a run's epics wait for every analysis it names,
in the version it names, whichever topic comes first), epics and the stories commands they
stream, cancels and redeliveries."""

from __future__ import annotations

import pytest

from contracts.backlog import Epic
from contracts.envelope import Envelope
from contracts.events import (
    CardAnalyzed,
    EpicGenerated,
    EpicsRequested,
    Stage,
    StoriesRequested,
)
from contracts.pipeline import ItemState
from contracts.topics import (
    CARDS_ANALYZED,
    EPICS_GENERATED,
    EPICS_REQUESTED,
    RUNS_CONTROL,
    STORIES_REQUESTED,
)
from services.epics import store
from tests.stages.conftest import OpenStage
from tests.stages.harness import (
    StageHarness,
    analysed,
    analysis_event,
    cancel,
    card,
    command,
    epics_of,
    refs,
    stored,
)

# Three cards of four requirements each, on unrelated topics: three epics offline.
LOGIN = card(
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
MEDIA = card(
    "c3",
    "- Editors must upload images up to 10 MB.\n"
    "- Uploaded images are resized to thumbnails.\n"
    "- Editors can crop an image before publishing.\n"
    "- Images must carry alt text.",
    title="Media library",
    position=2,
)
CARDS = (LOGIN, BILLING, MEDIA)


def epics_requested(run_id: str, analyses: list[CardAnalyzed], pipeline: bool = True) -> Envelope:
    request = EpicsRequested(
        run_id=run_id, project_id="p1", cards=refs(analyses), pipeline=pipeline
    )
    return command(request, run_id)


async def planned(epics: StageHarness, run_id: str) -> dict[str, ItemState]:
    return await epics.item_states(run_id)


@pytest.mark.parametrize(
    "order",
    [
        pytest.param(["c1", "c2", "c3", "request"], id="analyses-first"),
        pytest.param(["request", "c1", "c2", "c3"], id="request-first"),
        pytest.param(["c2", "request", "c3", "c1"], id="interleaved"),
    ],
)
async def test_the_epics_come_when_the_last_awaited_analysis_arrives(
    open_stage: OpenStage, order: list[str]
) -> None:
    analyses = {c.card_id: await analysed(c) for c in CARDS}
    expected = await epics_of(list(analyses.values()))
    assert len(expected) >= 2  # the test needs a run of several epics
    async with open_stage(Stage.EPICS) as epics:
        for step, arrival in enumerate(order):
            if arrival == "request":
                await epics.send(EPICS_REQUESTED, epics_requested("r1", list(analyses.values())))
            else:
                await epics.send(CARDS_ANALYZED, analysis_event(analyses[arrival]))
            if step < len(order) - 1:
                # Something is still missing: no epic item yet, nothing planned.
                assert await planned(epics, "r1") == {}, f"planned after {order[: step + 1]}"
                assert "items_planned" not in await epics.progress_kinds("r1")
        # The last arrival planned every epic of the grouping, in the same transaction.
        assert set(await planned(epics, "r1")) == {e.epic_id for e in expected}

        await epics.until_finished("r1")
        assert set((await planned(epics, "r1")).values()) == {ItemState.SUCCEEDED}
        generated = await epics.emitted(EPICS_GENERATED, EpicGenerated, run_id="r1")
        assert sorted((g.epic for g in generated), key=lambda e: e.order) == expected
        rows = {r.epic_id: r for r in await epics.rows(store.epics)}
        assert {k: stored(r, "epic", Epic) for k, r in rows.items()} == {
            e.epic_id: e for e in expected
        }
        assert {r.run_id for r in rows.values()} == {"r1"}
        # Streaming: a stories command per epic as it is made, then the one closing the run.
        commands = await epics.emitted(STORIES_REQUESTED, StoriesRequested, run_id="r1")
        assert [c.complete for c in commands] == [False] * len(expected) + [True]
        assert sorted(c.epics[0].epic_id for c in commands[:-1]) == sorted(
            e.epic_id for e in expected
        )
        assert commands[-1].epics == []
        assert {s.envelope.key for s in await epics.outbox(STORIES_REQUESTED)} == {"r1"}


async def test_an_analysis_of_another_version_does_not_release_the_run(
    open_stage: OpenStage,
) -> None:
    """The run names the version it wants; an older analysis of the card (one made before
    the card was edited, still on its way) must not let the epics start on it."""
    added = "Users must be able to export their sign-in history."
    edited = card("c1", f"{LOGIN.body}\n- {added}", title=LOGIN.title)
    old, new = await analysed(LOGIN), await analysed(edited)
    other = await analysed(BILLING)
    assert old.analysis_version != new.analysis_version
    async with open_stage(Stage.EPICS) as epics:
        await epics.send(CARDS_ANALYZED, analysis_event(other))
        await epics.send(EPICS_REQUESTED, epics_requested("r1", [new, other]))
        await epics.send(CARDS_ANALYZED, analysis_event(old))
        assert await planned(epics, "r1") == {}
        assert [r.card_id for r in await epics.rows(store.awaited)] == ["c1"]

        await epics.send(CARDS_ANALYZED, analysis_event(new))
        assert await planned(epics, "r1") != {}
        await epics.until_finished("r1")
        made = [g.epic for g in await epics.emitted(EPICS_GENERATED, EpicGenerated)]
        assert sorted(made, key=lambda e: e.order) == await epics_of([new, other])
        texts = {r.text for e in made for r in e.requirements}
        assert added in texts


async def test_a_request_for_analyses_already_here_plans_at_once(open_stage: OpenStage) -> None:
    analysis = await analysed(LOGIN)
    async with open_stage(Stage.EPICS) as epics:
        await epics.send(CARDS_ANALYZED, analysis_event(analysis))
        await epics.send(EPICS_REQUESTED, epics_requested("r1", [analysis], pipeline=False))
        assert await epics.rows(store.awaited) == []
        await epics.until_finished("r1")
        assert len(await epics.emitted(EPICS_GENERATED, EpicGenerated)) == len(
            await epics_of([analysis])
        )
        # Not a pipeline: no stories command, streamed or closing.
        assert await epics.outbox(STORIES_REQUESTED) == []


async def test_a_redelivered_envelope_changes_nothing(open_stage: OpenStage) -> None:
    first, second = await analysed(LOGIN), await analysed(BILLING)
    async with open_stage(Stage.EPICS) as epics:
        deliveries = [
            (CARDS_ANALYZED, analysis_event(first)),
            (EPICS_REQUESTED, epics_requested("r1", [first, second])),
            (CARDS_ANALYZED, analysis_event(second)),
        ]
        for topic, envelope in deliveries:
            await epics.send(topic, envelope)
        await epics.until_finished("r1")
        before = await epics.snapshot()

        for topic, envelope in deliveries:  # each once more, same ids
            await epics.send(topic, envelope)

        assert await epics.inbox_count() == 3
        assert await epics.snapshot() == before


async def test_a_cancel_stops_a_waiting_run_and_no_epic_or_stories_command_follows(
    open_stage: OpenStage,
) -> None:
    first, second = await analysed(LOGIN), await analysed(BILLING)
    async with open_stage(Stage.EPICS) as epics:
        await epics.send(CARDS_ANALYZED, analysis_event(first))
        await epics.send(EPICS_REQUESTED, epics_requested("r1", [first, second]))
        await epics.send(RUNS_CONTROL, cancel("r1"))
        run = await epics.run("r1")
        assert run is not None
        assert run.cancel_requested
        assert run.state.value == "finished"
        assert await epics.progress_kinds("r1") == ["stage_finished"]

        # The awaited analysis comes after the cancel: its epics are recorded cancelled.
        await epics.send(CARDS_ANALYZED, analysis_event(second))
        states = await planned(epics, "r1")
        assert set(states) == {e.epic_id for e in await epics_of([first, second])}
        assert set(states.values()) == {ItemState.CANCELLED}
        assert await epics.rows(store.epics) == []
        assert await epics.outbox(EPICS_GENERATED) == []
        assert await epics.outbox(STORIES_REQUESTED) == []
        kinds = await epics.progress_kinds("r1")
        assert kinds == ["stage_finished"] + ["item_cancelled"] * len(states)
