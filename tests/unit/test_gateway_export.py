"""Backlog export: JSON, CSV and Markdown agree, in a stable order, escaped properly."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re

import pytest

from contracts.backlog import (
    CardAnalysis,
    CardKind,
    OpenQuestion,
    Priority,
    Requirement,
    SourceSpan,
)
from services.gateway.export import (
    CSV_COLUMNS,
    MEDIA_TYPES,
    Backlog,
    ExportFormat,
    ProjectRef,
    backlog_to_dict,
    build_backlog,
    csv_rows,
    export_filename,
    render,
    render_csv,
    render_json,
    render_markdown,
)
from services.gateway.quality import AnalysedCard, build_report
from tests.unit.gateway_samples import PROJECT, epic, sample_backlog, story, subtask

EPIC_IDS = ["ep_a", "ep_b"]
STORY_IDS = ["st_a1", "st_a2", "st_b1"]
SUBTASK_IDS = ["su_1", "su_2", "su_3", "su_4", "su_5"]


def parse_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def test_build_orders_every_level_by_order_then_id() -> None:
    backlog = sample_backlog()
    assert [n.epic.epic_id for n in backlog.epics] == EPIC_IDS
    assert [c.story.story_id for n in backlog.epics for c in n.stories] == STORY_IDS
    subtask_ids = [s.subtask_id for n in backlog.epics for c in n.stories for s in c.subtasks]
    assert subtask_ids == SUBTASK_IDS
    assert backlog.counts.epics == 2
    assert backlog.counts.stories == 3
    assert backlog.counts.subtasks == 5


def test_build_leaves_out_orphans() -> None:
    backlog = build_backlog(
        PROJECT,
        [epic("ep_a", 0, "A")],
        [story("st_1", "ep_a", 0, "S"), story("st_orphan", "ep_gone", 0, "O")],
        [subtask("su_1", "st_1", 0, "T"), subtask("su_orphan", "st_orphan", 0, "U")],
    )
    assert backlog.counts.stories == 1
    assert backlog.counts.subtasks == 1


def test_json_shape_and_round_trip() -> None:
    backlog = sample_backlog()
    data = json.loads(render_json(backlog))
    assert data["project"] == {"id": "prj_1", "name": "Checkout, v2"}
    assert [e["epic"]["epic_id"] for e in data["epics"]] == EPIC_IDS
    first_story = data["epics"][0]["stories"][0]
    assert set(first_story) == {"story", "subtasks"}
    assert first_story["story"]["acceptance_criteria"][0] == {
        "given": "a cart",
        "when": "I pay",
        "then": "the order is placed",
        "text": "",
    }
    assert first_story["subtasks"][1]["depends_on"] == ["su_1"]
    assert Backlog.from_dict(data) == backlog
    assert data == backlog_to_dict(backlog)


def test_from_dict_of_the_subtasks_endpoint_takes_the_project_apart() -> None:
    data = backlog_to_dict(sample_backlog())
    del data["project"]
    assert Backlog.from_dict(data, project=PROJECT) == sample_backlog()


def test_csv_has_a_row_per_item_parents_first_with_escaping() -> None:
    text = render_csv(sample_backlog())
    assert text.startswith(",".join(CSV_COLUMNS) + "\r\n")
    rows = parse_csv(text)
    assert [(r["type"], r["id"], r["parent_id"]) for r in rows] == [
        ("epic", "ep_a", ""),
        ("story", "st_a1", "ep_a"),
        ("subtask", "su_1", "st_a1"),
        ("subtask", "su_2", "st_a1"),
        ("story", "st_a2", "ep_a"),
        ("subtask", "su_3", "st_a2"),
        ("subtask", "su_4", "st_a2"),
        ("epic", "ep_b", ""),
        ("story", "st_b1", "ep_b"),
        ("subtask", "su_5", "st_b1"),
    ]
    by_id = {r["id"]: r for r in rows}
    assert by_id["st_a1"]["title"] == 'Enter address, "quoted"\nand a newline'
    assert (by_id["st_a1"]["estimate"], by_id["st_a1"]["estimate_unit"]) == ("3", "points")
    assert by_id["st_a1"]["details"].splitlines() == [
        'As a shopper, I want to enter address, "quoted"',
        "and a newline, so that I finish faster.",
        "Acceptance criteria:",
        "- Given a cart, when I pay, then the order is placed",
        "- Given a bad card, when I pay, then I see why",
    ]
    assert by_id["st_a1"]["requirement_ids"] == "card_1:R1"
    su_1 = by_id["su_1"]
    assert (su_1["estimate"], su_1["estimate_unit"], su_1["kind"]) == ("4", "hours", "dev")
    assert su_1["priority"] == ""
    assert by_id["su_3"]["estimate"] == "2.5"
    assert by_id["su_2"]["depends_on"] == "su_1"
    assert by_id["ep_a"]["details"] == "Buy without an account.\n\n# Not a heading"
    assert by_id["ep_a"]["priority"] == "P1"


def test_csv_neutralises_formulas_unless_asked_not_to() -> None:
    rows = {r["id"]: r for r in parse_csv(render_csv(sample_backlog()))}
    assert rows["st_b1"]["title"] == "'=SUM(A1:A2) store a card"
    assert rows["su_5"]["title"] == "'-1 vault"
    assert rows["su_5"]["details"] == "'- first\n- second"
    raw = {r["id"]: r for r in parse_csv(render_csv(sample_backlog(), neutralize_formulas=False))}
    assert raw["st_b1"]["title"] == "=SUM(A1:A2) store a card"
    assert csv_rows(sample_backlog())[0]["id"] == "ep_a"


def test_markdown_structure() -> None:
    text = render_markdown(sample_backlog())
    lines = text.splitlines()
    assert lines[0] == "# Checkout, v2"
    assert "2 epics, 3 stories (9 points), 5 subtasks (12.5 hours)" in lines[2]
    assert [line for line in lines if line.startswith("## ")] == [
        "## 1. Guest checkout",
        "## 2. Saved cards",
    ]
    assert [line for line in lines if line.startswith("### ")] == [
        '### 1.1 Enter address, "quoted" and a newline',
        "### 1.2 Pay by card",
        "### 2.1 =SUM(A1:A2) store a card",
    ]
    assert "**As a** shopper, **I want** to pay by card, **so that** I finish faster." in lines
    assert "- **Given** a cart, **when** I pay, **then** the order is placed" in lines
    assert "- [ ] Build the \\*form\\* (dev, 4 h) `su_1`" in lines
    assert "- [ ] Write tests (test, 2.5 h) `su_2`" in lines
    assert "  After: Build the \\*form\\*." in lines
    assert "\\# Not a heading" in lines  # text cannot open a heading
    assert text.endswith("\n")
    assert not text.endswith("\n\n")


def test_markdown_escapes_markup_in_titles() -> None:
    backlog = build_backlog(
        ProjectRef("p", "<script>x</script>"),
        [epic("ep_1", 0, "Use [links](http://x) and `code` and _under_")],
        [],
        [],
    )
    text = render_markdown(backlog)
    assert "# \\<script\\>x\\</script\\>" in text
    assert "## 1. Use \\[links\\](http://x) and \\`code\\` and \\_under\\_" in text


def test_the_three_formats_agree_on_counts_and_ids() -> None:
    backlog = sample_backlog()
    data = json.loads(render(backlog, ExportFormat.JSON))
    json_ids = {
        "epic": [e["epic"]["epic_id"] for e in data["epics"]],
        "story": [s["story"]["story_id"] for e in data["epics"] for s in e["stories"]],
        "subtask": [
            t["subtask_id"] for e in data["epics"] for s in e["stories"] for t in s["subtasks"]
        ],
    }
    rows = parse_csv(render(backlog, ExportFormat.CSV))
    csv_ids = {kind: [r["id"] for r in rows if r["type"] == kind] for kind in json_ids}
    markdown = render(backlog, ExportFormat.MARKDOWN)
    md_ids = {
        "epic": re.findall(r"^Epic `([^`]+)`", markdown, flags=re.MULTILINE),
        "story": re.findall(r"^Story `([^`]+)`", markdown, flags=re.MULTILINE),
        "subtask": re.findall(r"^- \[ \] .* `([^`]+)`$", markdown, flags=re.MULTILINE),
    }
    expected = {"epic": EPIC_IDS, "story": STORY_IDS, "subtask": SUBTASK_IDS}
    assert json_ids == csv_ids == md_ids == expected
    assert markdown.count("\n## ") == backlog.counts.epics
    assert markdown.count("\n### ") == backlog.counts.stories
    assert markdown.count("\n- [ ] ") == backlog.counts.subtasks


def test_exports_are_deterministic_whatever_the_input_order() -> None:
    backlog = sample_backlog()
    shuffled = Backlog(backlog.project, tuple(reversed(backlog.epics)))
    for fmt in ExportFormat:
        assert render(shuffled, fmt) == render(backlog, fmt)


def test_empty_backlog() -> None:
    empty = Backlog(PROJECT)
    assert json.loads(render_json(empty)) == {
        "project": {"id": "prj_1", "name": "Checkout, v2"},
        "epics": [],
    }
    assert render_csv(empty) == ",".join(CSV_COLUMNS) + "\r\n"
    assert "0 epics, 0 stories (0 points), 0 subtasks (0 hours)" in render_markdown(empty)


@pytest.mark.parametrize(
    ("name", "fmt", "expected"),
    [
        ("Checkout, v2", ExportFormat.CSV, "checkout-v2-backlog.csv"),
        ("Ünïcode only ✓", ExportFormat.MARKDOWN, "unicode-only-backlog.md"),
        ("???", ExportFormat.JSON, "prj_1-backlog.json"),
    ],
)
def test_export_filename(name: str, fmt: ExportFormat, expected: str) -> None:
    assert export_filename(ProjectRef("prj_1", name), fmt) == expected


def test_media_types() -> None:
    assert MEDIA_TYPES[ExportFormat.CSV] == "text/csv; charset=utf-8"
    assert set(MEDIA_TYPES) == set(ExportFormat)
    assert [f.value for f in ExportFormat] == ["json", "csv", "markdown"]


# --- the quality section ---------------------------------------------------------------------


def _with_quality() -> Backlog:
    backlog = sample_backlog()
    question = "=HYPERLINK(x) Which *wording* do we use? TBD"
    card = AnalysedCard(
        "card_1",
        "Checkout",
        CardAnalysis(
            card_id="card_1",
            summary="Checkout.",
            kind=CardKind.FEATURE,
            personas=["shopper"],
            requirements=[
                Requirement(
                    id="card_1:R1", text="Users pay.", source_span=SourceSpan(start=0, end=10)
                ),
                Requirement(
                    id="card_1:R2",
                    text="Guests check out without an account.",
                    source_span=SourceSpan(start=11, end=47),
                    author_id="FR-02",
                ),
            ],
            priority=Priority.P1,
            open_questions=[question],
            questions=[OpenQuestion(text=question, source_span=SourceSpan(start=48, end=90))],
        ),
    )
    nodes = backlog.epics
    report = build_report(
        PROJECT.id,
        [card],
        [n.epic for n in nodes],
        [c.story for n in nodes for c in n.stories],
        [s for n in nodes for c in n.stories for s in c.subtasks],
        limit=None,
    )
    return dataclasses.replace(backlog, quality=report)


def test_json_carries_the_quality_report_and_open_questions() -> None:
    data = json.loads(render_json(_with_quality()))
    assert data["quality"]["coverage"] == {"covered": 1, "total": 2, "share": 0.5}
    assert [r["requirement_id"] for r in data["quality"]["uncovered"]] == ["card_1:R2"]
    assert "open_questions" not in data["quality"]  # once, at the top
    (question,) = data["open_questions"]
    assert (question["card_id"], question["source_span"]) == ("card_1", {"start": 48, "end": 90})
    # The items are read back as before.
    assert Backlog.from_dict(data).epics == sample_backlog().epics
    assert "quality" not in json.loads(render_json(sample_backlog()))


def test_csv_appends_quality_findings_and_questions_after_the_items() -> None:
    rows = parse_csv(render_csv(_with_quality()))
    types = [r["type"] for r in rows]
    assert types[: len(csv_rows(sample_backlog()))] == [
        r["type"] for r in csv_rows(sample_backlog())
    ]
    (coverage,) = [r for r in rows if r["type"] == "quality"]
    assert (coverage["estimate"], coverage["estimate_unit"]) == ("50", "percent")
    findings = {(r["kind"], r["id"]) for r in rows if r["type"] == "finding"}
    assert ("uncovered_requirement", "card_1:R2") in findings
    assert ("untestable", "st_b1") in findings  # its criteria list is empty
    (question,) = [r for r in rows if r["type"] == "question"]
    assert question["parent_id"] == "card_1"
    assert question["title"].startswith("'=HYPERLINK")  # neutralised like every cell
    assert question["details"] == "card Checkout, characters 48-90"


def test_markdown_has_quality_and_open_questions_sections_escaped() -> None:
    text = render_markdown(_with_quality())
    assert "\n## Quality\n" in text
    assert "Coverage: 1 of 2 of the author's requirements" in text
    assert "| uncovered requirements | 1 |" in text
    assert "- FR-02: Guests check out without an account. `card_1:R2`" in text
    assert "\n## Open questions\n" in text
    assert "Which \\*wording\\* do we use? TBD (card Checkout `card_1`, characters 48-90)" in text
    assert "## Quality" not in render_markdown(sample_backlog())
