"""Sample data for the gateway's pure-module tests: a small backlog and run objects."""

from __future__ import annotations

from typing import Any

from contracts.backlog import (
    AcceptanceCriterion,
    Epic,
    Priority,
    Requirement,
    SourceSpan,
    Story,
    Subtask,
    SubtaskKind,
)
from services.gateway.export import ProjectRef, build_backlog

PROJECT = ProjectRef(id="prj_1", name="Checkout, v2")


def epic(epic_id: str, order: int, title: str, **extra: Any) -> Epic:
    fields: dict[str, Any] = {
        "epic_id": epic_id,
        "project_id": PROJECT.id,
        "title": title,
        "goal": f"Goal of {title}.",
        "priority": Priority.P1,
        "order": order,
        "requirement_ids": [f"card_1:R{order + 1}"],
        "card_ids": ["card_1"],
        "requirements": [
            Requirement(
                id=f"card_1:R{order + 1}",
                text="Users pay.",
                source_span=SourceSpan(start=0, end=10),
            )
        ],
    }
    return Epic(**(fields | extra))


def story(story_id: str, epic_id: str, order: int, title: str, **extra: Any) -> Story:
    fields: dict[str, Any] = {
        "story_id": story_id,
        "epic_id": epic_id,
        "title": title,
        "as_a": "shopper",
        "i_want": f"to {title.lower()}",
        "so_that": "I finish faster",
        "acceptance_criteria": [
            AcceptanceCriterion(given="a cart", when="I pay", then="the order is placed"),
            AcceptanceCriterion(given="a bad card", when="I pay", then="I see why"),
        ],
        "priority": Priority.P2,
        "estimate_points": 3,
        "requirement_ids": ["card_1:R1"],
        "order": order,
    }
    return Story(**(fields | extra))


def subtask(subtask_id: str, story_id: str, order: int, title: str, **extra: Any) -> Subtask:
    fields: dict[str, Any] = {
        "subtask_id": subtask_id,
        "story_id": story_id,
        "title": title,
        "description": f"Do {title.lower()}.",
        "kind": SubtaskKind.DEV,
        "estimate_hours": 2.5,
        "order": order,
        "depends_on": [],
    }
    return Subtask(**(fields | extra))


def sample_backlog():  # type: ignore[no-untyped-def]
    """Two epics (given out of order), three stories, five subtasks, awkward text."""
    epics = [
        epic("ep_b", 1, "Saved cards"),
        epic("ep_a", 0, "Guest checkout", goal="Buy without an account.\n\n# Not a heading"),
    ]
    stories = [
        story("st_a2", "ep_a", 1, "Pay by card"),
        story("st_a1", "ep_a", 0, 'Enter address, "quoted"\nand a newline'),
        story("st_b1", "ep_b", 0, "=SUM(A1:A2) store a card", acceptance_criteria=[]),
    ]
    subtasks = [
        subtask("su_2", "st_a1", 1, "Write tests", kind=SubtaskKind.TEST, depends_on=["su_1"]),
        subtask("su_1", "st_a1", 0, "Build the *form*", estimate_hours=4),
        subtask("su_3", "st_a2", 0, "Call the PSP"),
        subtask("su_4", "st_a2", 1, "Document it", kind=SubtaskKind.DOCS, estimate_hours=1),
        subtask("su_5", "st_b1", 0, "-1 vault", description="- first\n- second"),
    ]
    return build_backlog(PROJECT, epics, stories, subtasks)


def run_object(**overrides: Any) -> dict[str, Any]:
    """A pipeline run mid-way, shaped as DESIGN.md's run object."""
    run: dict[str, Any] = {
        "id": "0190a7c2-run",
        "project_id": PROJECT.id,
        "stage": "pipeline",
        "status": "running",
        "created_at": "2025-01-01T10:00:00Z",
        "started_at": "2025-01-01T10:00:01Z",
        "finished_at": None,
        "elapsed_seconds": 65.2,
        "eta_seconds": 130,
        "counts": {
            "total": 30,
            "pending": 10,
            "running": 4,
            "succeeded": 15,
            "failed": 1,
            "cancelled": 0,
        },
        "in_progress": [
            {
                "item_id": "st_7",
                "stage": "stories",
                "title": "Checkout with a saved card",
                "started_at": "2025-01-01T10:00:50Z",
                "elapsed_seconds": 14.2,
                "tokens_so_far": 320,
            },
            {
                "item_id": "su_9",
                "stage": "subtasks",
                "title": "A very long title " * 10,
                "started_at": "2025-01-01T10:00:20Z",
                "elapsed_seconds": 45,
                "tokens_so_far": 1200,
                "attempt": 2,
            },
        ],
        "stages": {
            "subtasks": {"total": 0, "pending": 0, "running": 0, "succeeded": 0, "failed": 0},
            "analysis": {
                "total": 10,
                "pending": 0,
                "running": 0,
                "succeeded": 10,
                "failed": 0,
                "cancelled": 0,
            },
            "epics": {
                "total": 3,
                "pending": 0,
                "running": 0,
                "succeeded": 3,
                "failed": 0,
                "cancelled": 0,
            },
            "stories": {
                "total": 10,
                "pending": 3,
                "running": 2,
                "succeeded": 4,
                "failed": 1,
                "cancelled": 0,
            },
        },
        "usage": {
            "llm_calls": 42,
            "input_tokens": 12345,
            "output_tokens": 3456,
            "cost_usd": 0.0123,
        },
        "errors": [
            {
                "item_id": "st_3",
                "stage": "stories",
                "code": "llm_timeout",
                "message": "no answer\nwithin 60s",
            }
        ],
        "version": 17,
        "updated_at": "2025-01-01T10:01:06Z",
    }
    return run | overrides
