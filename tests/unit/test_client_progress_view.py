"""The CLI's live view of a run and its final tree, rendered from the API's JSON (a
server-side Backlog is serialised to the export's JSON first, as the gateway sends it)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from services.gateway.client.progress_view import (
    bar,
    fit,
    format_cost,
    format_count,
    format_duration,
    one_line,
    render_progress,
    render_tree,
    stage_summary,
)
from services.gateway.export import backlog_to_dict, render_json
from tests.unit.gateway_samples import run_object, sample_backlog


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "-"),
        (-3, "0s"),
        (0, "0s"),
        (0.4, "0s"),
        (5, "5s"),
        (59.6, "1m00s"),
        (65, "1m05s"),
        (600, "10m00s"),
        (3725, "1h02m05s"),
        (90061, "25h01m01s"),
    ],
)
def test_format_duration(seconds: float | None, text: str) -> None:
    assert format_duration(seconds) == text


def test_small_formatters() -> None:
    assert format_count(12345) == "12,345"
    assert format_count(None) == "0"
    assert format_cost(0.0123) == "$0.0123"
    assert format_cost(None) == "$0.0000"
    assert format_cost(1234.5) == "$1,234.50"
    assert fit("abcdef", 4) == "abc…"
    assert fit("abcdef", 6) == "abcdef"
    assert fit("abcdef", 5, "...") == "ab..."
    assert fit("abcdef", 2, "...") == "ab"
    assert fit("abc", 0) == ""
    assert one_line(" a\n b\t c ") == "a b c"


def counts(**values: int) -> dict[str, int]:
    base = dict.fromkeys(("total", "pending", "running", "succeeded", "failed", "cancelled"), 0)
    return base | values


@pytest.mark.parametrize(
    ("values", "drawn"),
    [
        ({"total": 10, "succeeded": 5, "running": 2, "failed": 1, "pending": 2}, "#####x>>.."),
        ({"total": 10, "succeeded": 10}, "##########"),
        ({"total": 3, "succeeded": 1, "failed": 1, "cancelled": 1}, "###xxxx---"),
        ({"total": 0}, ".........."),
        ({"total": 7, "pending": 7}, ".........."),
        ({"total": 3, "succeeded": 9}, "##########"),  # never more cells than the bar
    ],
)
def test_bar_cells_add_up(values: dict[str, int], drawn: str) -> None:
    assert bar(counts(**values), 10) == f"[{drawn}]"


def test_stage_summary() -> None:
    assert stage_summary(counts(total=10, succeeded=5, running=2, failed=1)) == (
        "5/10 done, 2 running, 1 failed"
    )
    assert stage_summary(counts(total=4, succeeded=3, cancelled=1)) == "3/4 done, 1 cancelled"
    assert stage_summary(counts()) == "waiting"
    assert stage_summary(counts(), finished=True) == "nothing to do"
    assert stage_summary({}) == "waiting"


def test_pipeline_run_renders_a_bar_per_stage_in_pipeline_order() -> None:
    lines = render_progress(run_object(), width=80)
    assert lines[0] == "Run 0190a7c2-run (pipeline): running"
    assert [line.split()[0] for line in lines[1:5]] == ["analysis", "epics", "stories", "subtasks"]
    assert lines[1].endswith("]  10/10 done")
    assert lines[3].endswith("]  4/10 done, 2 running, 1 failed")
    assert lines[4].endswith("]  waiting")
    assert len({line.index("[") for line in lines[1:5]}) == 1  # bars aligned
    assert len({line.index("]") for line in lines[1:5]}) == 1
    assert "Elapsed 1m05s, ETA 2m10s" in lines
    assert "Tokens 12,345 in, 3,456 out; 42 LLM calls; $0.0123" in lines
    assert all(len(line) <= 80 for line in lines)


def test_items_in_progress_longest_first_with_time_tokens_and_attempt() -> None:
    lines = render_progress(run_object(), width=80)
    start = lines.index("In progress (2):")
    first, second = lines[start + 1 : start + 3]
    assert first.startswith("  subtasks  A very long title")
    assert first.endswith("…  45s, 1,200 tokens, attempt 2")
    assert second == "  stories   Checkout with a saved card  14s, 320 tokens"


def test_errors_show_code_and_message_on_one_line() -> None:
    lines = render_progress(run_object())
    start = lines.index("Errors (1):")
    assert lines[start + 1] == "  stories   st_3: llm_timeout: no answer within 60s"


def test_only_the_latest_errors_and_first_items_are_listed() -> None:
    errors = [{"item_id": f"it_{i}", "code": "llm_timeout", "message": "x"} for i in range(8)]
    items = [{"item_id": f"it_{i}", "title": f"Item {i}", "elapsed_seconds": i} for i in range(12)]
    lines = render_progress(run_object(errors=errors, in_progress=items), max_items=3, max_errors=2)
    assert "In progress (12):" in lines
    assert "  Item 11  11s" in lines
    assert "  Item 8  8s" not in lines
    assert "  … and 9 more" in lines
    assert "  … 6 earlier, the latest:" in lines
    assert lines[-2:] == ["  it_6: llm_timeout: x", "  it_7: llm_timeout: x"]


def test_single_stage_run_uses_its_counts() -> None:
    run = run_object(stage="subtasks", stages=None, in_progress=[], errors=[], usage=None)
    run["counts"] = counts(total=20, succeeded=20)
    run["status"] = "succeeded"
    run["eta_seconds"] = 0
    lines = render_progress(run, width=60)
    assert lines == [
        "Run 0190a7c2-run (subtasks): succeeded",
        f"subtasks  [{'#' * 36}]  20/20 done",
        "Elapsed 1m05s",
    ]


def test_unknown_eta_and_queued_run() -> None:
    run: dict[str, Any] = {"id": "r1", "stage": "analysis", "status": "queued", "counts": {}}
    assert render_progress(run) == [
        "Run r1 (analysis): queued",
        f"analysis  [{'.' * 40}]  waiting",
        "Elapsed -, ETA unknown",
    ]


def test_narrow_width_keeps_every_line_within_it_and_drops_bars_last() -> None:
    for width in (30, 40, 50, 100, 200):
        lines = render_progress(run_object(), width=width)
        assert all(len(line) <= width for line in lines), width
    narrow = render_progress(run_object(), width=30)
    assert "[" not in narrow[1]
    assert narrow[1] == "analysis  10/10 done"
    wide = render_progress(run_object(), width=200)
    assert wide[1].count("#") == 40  # bars stop growing


def test_tree_from_a_backlog_s_json_export_in_its_order() -> None:
    # The sample's epics are given out of order: the export orders them, the tree keeps it.
    backlog = sample_backlog()
    lines = render_tree(backlog_to_dict(backlog))
    assert lines == [
        "Checkout, v2: 2 epics, 3 stories, 5 subtasks",
        "├─ Guest checkout (2 stories, 4 subtasks)",
        '│  ├─ Enter address, "quoted" and a newline (2 subtasks)',
        "│  └─ Pay by card (2 subtasks)",
        "└─ Saved cards (1 story, 1 subtask)",
        "   └─ =SUM(A1:A2) store a card (1 subtask)",
    ]
    # The export as it travels (the JSON text the API answers) draws the same tree.
    assert render_tree(json.loads(render_json(backlog))) == lines


def test_tree_ascii_width_and_story_limit() -> None:
    backlog = backlog_to_dict(sample_backlog())
    lines = render_tree(backlog, ascii_only=True, max_stories=1, width=40)
    assert lines == [
        "Checkout, v2: 2 epics, 3 stories, 5 s...",
        "+- Guest chec... (2 stories, 4 subtasks)",
        '|  +- Enter address, "qu... (2 subtasks)',
        "|  `- ... and 1 more story",
        "`- Saved cards (1 story, 1 subtask)",
        "   `- =SUM(A1:A2) store a... (1 subtask)",
    ]
    assert all(line.isascii() for line in lines)


def test_tree_of_an_empty_backlog_or_bare_subtasks_payload() -> None:
    assert render_tree({"epics": []}) == ["Backlog: 0 epics, 0 stories, 0 subtasks"]
    payload = {"epics": [{"epic": {"title": "E"}, "stories": [{"story": {"title": "S"}}]}]}
    assert render_tree(payload) == [
        "Backlog: 1 epic, 1 story, 0 subtasks",
        "└─ E (1 story, 0 subtasks)",
        "   └─ S (0 subtasks)",
    ]
