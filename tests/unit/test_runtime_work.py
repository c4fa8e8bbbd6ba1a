"""The work queue's pure parts: a new item's row, which items a command adds, and the
progress envelope of a run (caused by the command that opened it)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from contracts.events import ErrorCode, ProgressKind, RunProgress, Stage
from contracts.pipeline import ItemState
from services.runtime.work.items import item_row, unseen
from services.runtime.work.progress import Progress, seconds_since
from services.runtime.work.records import NewItem, RunState, WorkRun

RUN = WorkRun(
    run_id="run-1",
    stage=Stage.STORIES,
    project_id="p1",
    tenant_id="acme",
    correlation_id="corr-1",
    causation_id="cmd-1",
    pipeline=True,
    options={},
    scope=[],
    state=RunState.OPEN,
    cancel_requested=False,
)
AT = datetime(2026, 1, 2, tzinfo=UTC)


def test_a_new_item_waits_for_its_input_is_pending_or_in_a_cancelled_run_cancelled() -> None:
    waiting = item_row(RUN, NewItem("a", "A", {"x": 1}, wait_key="card:a"), 3, AT)
    assert (waiting["state"], waiting["seq"], waiting["payload"]) == (
        ItemState.WAITING.value,
        3,
        '{"x": 1}',
    )
    assert "error_code" not in waiting
    assert item_row(RUN, NewItem("b", "B"), 0, AT)["state"] == ItemState.PENDING.value
    cancelled = item_row(replace(RUN, cancel_requested=True), NewItem("c", "C"), 0, AT)
    assert (cancelled["state"], cancelled["error_code"]) == (
        ItemState.CANCELLED.value,
        ErrorCode.CANCELLED.value,
    )


def test_a_command_adds_each_unseen_id_once() -> None:
    items = [NewItem("a", "first"), NewItem("b", "b"), NewItem("a", "again"), NewItem("c", "c")]
    assert [(i.item_id, i.title) for i in unseen(items, {"b"})] == [("a", "again"), ("c", "c")]


def test_a_progress_event_is_caused_by_the_command_that_opened_the_run() -> None:
    envelope = Progress(Stage.STORIES, "stories").envelope(
        RUN, ProgressKind.ITEM_STARTED, item_id="a", attempt=1
    )
    assert (envelope.type, envelope.schema_version, envelope.source, envelope.key) == (
        RunProgress.TYPE,
        1,
        "stories",
        "run-1",
    )
    assert (envelope.tenant_id, envelope.project_id, envelope.run_id) == ("acme", "p1", "run-1")
    assert (envelope.correlation_id, envelope.causation_id) == ("corr-1", "cmd-1")
    assert envelope.data["kind"] == ProgressKind.ITEM_STARTED.value
    assert "usage" not in envelope.data  # none left out


def test_a_stage_run_lasts_from_its_naive_or_aware_start_never_less_than_zero() -> None:
    assert seconds_since(AT.replace(tzinfo=None), AT + timedelta(seconds=2)) == 2.0
    assert seconds_since(AT + timedelta(seconds=5), AT) == 0.0
    assert seconds_since(None, AT) == 0.0
