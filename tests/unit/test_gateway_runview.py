"""The run object's status, counts, stage completion and ETA (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.gateway.readmodel.runview import (
    ItemView,
    RunFacts,
    counts,
    eta_seconds,
    is_finished,
    stage_done,
    status,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def item(
    stage: str,
    item_id: str,
    state: str,
    start: int | None = None,
    end: int | None = None,
    landed: bool = True,
) -> ItemView:
    return ItemView(
        stage=stage,
        item_id=item_id,
        title=item_id,
        state=state,
        started_at=T0 + timedelta(seconds=start) if start is not None else None,
        finished_at=T0 + timedelta(seconds=end) if end is not None else None,
        result_landed=landed and state == "succeeded",
    )


def test_counts_add_up_and_waiting_counts_as_pending() -> None:
    got = counts(
        [
            item("analysis", "a", "waiting"),
            item("analysis", "b", "running"),
            item("analysis", "c", "succeeded"),
            item("analysis", "d", "failed"),
        ]
    )
    assert got == {
        "total": 4,
        "pending": 1,
        "running": 1,
        "succeeded": 1,
        "failed": 1,
        "cancelled": 0,
    }


def test_a_single_stage_run_finishes_only_when_its_service_says_so() -> None:
    items = [item("epics", "e1", "succeeded")]
    assert status(RunFacts("epics", frozenset(), items)) == "running"
    assert status(RunFacts("epics", frozenset({"epics"}), items)) == "succeeded"


def test_a_run_is_not_finished_before_the_results_of_its_succeeded_items_are_projected() -> None:
    # Progress and results travel on different topics: "succeeded" may be seen first.
    lagging = RunFacts(
        "subtasks", frozenset({"subtasks"}), [item("subtasks", "s1", "succeeded", landed=False)]
    )
    assert not is_finished(lagging)
    assert status(lagging) == "running"
    streamed = pipeline(
        item("analysis", "c1", "succeeded"),
        item("epics", "e1", "succeeded"),
        item("stories", "e1", "succeeded"),
        item("subtasks", "s1", "succeeded", landed=False),
    )
    assert not stage_done(streamed, "subtasks")
    failed = RunFacts("subtasks", frozenset({"subtasks"}), [item("subtasks", "s1", "failed")])
    assert status(failed) == "failed", "a failed item has no result to wait for"


def test_a_queued_run_has_started_nothing() -> None:
    assert status(RunFacts("analysis", frozenset(), [item("analysis", "c", "pending")])) == "queued"


def pipeline(
    *items: ItemView, finished: frozenset[str] = frozenset({"analysis", "epics"})
) -> RunFacts:
    return RunFacts("pipeline", finished, list(items))


def test_streamed_stages_are_done_when_their_parent_stage_is_done_and_their_items_terminal() -> (
    None
):
    facts = pipeline(
        item("analysis", "c1", "succeeded"),
        item("epics", "e1", "succeeded"),
        item("stories", "e1", "succeeded"),
        item("subtasks", "s1", "running"),
    )
    assert stage_done(facts, "stories")
    assert not stage_done(facts, "subtasks")
    assert not is_finished(facts)


def test_stories_are_not_done_before_the_epics_stage_is() -> None:
    facts = pipeline(
        item("epics", "e1", "succeeded"),
        item("stories", "e1", "succeeded"),
        finished=frozenset({"analysis"}),
    )
    assert not stage_done(facts, "stories")
    assert status(facts) == "running"


def test_a_pipeline_with_some_failures_ends_partial_and_all_failures_failed() -> None:
    done = frozenset({"analysis", "epics"})
    partial = pipeline(
        item("analysis", "c1", "succeeded"),
        item("analysis", "c2", "failed"),
        item("epics", "e1", "succeeded"),
        item("stories", "e1", "succeeded"),
        finished=done,
    )
    assert status(partial) == "partial"
    failed = pipeline(item("analysis", "c1", "failed"), finished=done)
    assert status(failed) == "failed"
    clean = pipeline(
        item("analysis", "c1", "succeeded"),
        item("epics", "e1", "succeeded"),
        item("stories", "e1", "succeeded"),
        item("subtasks", "s1", "succeeded"),
        finished=done,
    )
    assert status(clean) == "succeeded"


def test_eta_is_unknown_before_the_first_item_finishes_then_follows_throughput() -> None:
    now = T0 + timedelta(seconds=10)
    running = [item("analysis", "a", "running", start=0)]
    assert eta_seconds(running, now, concurrency=1, finished=False) is None
    items = [
        item("analysis", "a", "succeeded", start=0, end=4),
        item("analysis", "b", "succeeded", start=4, end=8),
        item("analysis", "c", "running", start=8),
        item("analysis", "d", "pending"),
        item("analysis", "e", "pending"),
    ]
    # mean 4 s; two pending (8 s) plus 2 s left on the running one, over one lane.
    assert eta_seconds(items, now, concurrency=1, finished=False) == 10.0
    assert eta_seconds(items, now, concurrency=2, finished=False) == 5.0
    assert eta_seconds(items, now, concurrency=2, finished=True) == 0.0
