"""The subtasks stage's offline plan: the work each story needs, read from its own words
(data, API, UI, notifications, access, performance, a test per criterion, docs), so that
different stories get different subtasks; linear on hostile text."""

from __future__ import annotations

import time

import pytest

from contracts.backlog import (
    AcceptanceCriterion,
    Priority,
    Requirement,
    SourceSpan,
    Story,
    SubtaskKind,
)
from contracts.events import StoryInContext, SubtaskOptions
from services.subtasks import logic


def criterion(given: str, when: str, then: str, text: str = "") -> AcceptanceCriterion:
    return AcceptanceCriterion(given=given, when=when, then=then, text=text)


def story(
    title: str,
    as_a: str,
    i_want: str,
    criteria: list[AcceptanceCriterion],
    requirement: str,
    points: int = 3,
) -> StoryInContext:
    return StoryInContext(
        story=Story(
            story_id="story-1",
            epic_id="epic-1",
            title=title,
            as_a=as_a,
            i_want=i_want,
            so_that="the day runs to plan",
            acceptance_criteria=criteria,
            priority=Priority.P2,
            estimate_points=points,
            requirement_ids=["card-1:R1"],
            order=0,
        ),
        epic_title="Field service scheduling",
        requirements=[
            Requirement(
                id="card-1:R1",
                text=requirement,
                source_span=SourceSpan(start=0, end=len(requirement)),
            )
        ],
    )


ADDRESS = story(
    "See the customer's address on a job",
    "technician",
    "the app to show the customer's address",
    [
        criterion(
            "a technician using the app",
            "a technician opens a job",
            "the app shows the customer's address",
            "WHEN a technician opens a job THE app SHALL show the customer's address",
        )
    ],
    "WHEN a technician opens a job THE app SHALL show the customer's address",
)
AVAILABILITY = story(
    "Set availability for next week",
    "technician",
    "to set my availability for next week",
    [criterion("a technician", "they set their availability", "their availability is saved")],
    "Technicians MUST be able to set their availability for next week",
)
REASSIGN = story(
    "Reassign a job",
    "dispatcher",
    "to reassign a job",
    [
        criterion("a dispatcher", "they reassign a job", "the technician is notified"),
        criterion("a user who is not an admin", "they try to reassign a job", "it is refused"),
    ],
    "Only an admin can reassign a job through the API, and the technician is notified",
)
SEARCH = story(
    "Search results load within 2 seconds",
    "dispatcher",
    "search results to load within 2 seconds",
    [criterion("the release", "it is measured", "search results load within 2 seconds")],
    "Search results MUST load within 2 seconds",
)
DEFAULTS = SubtaskOptions()


def titles(planned: StoryInContext, opts: SubtaskOptions = DEFAULTS) -> list[str]:
    draft = logic.offline_draft(planned, opts)
    logic.validate(opts)(draft)
    return [t.title for t in draft.subtasks]


def test_a_ui_story_gets_screen_work_and_its_test_named_after_its_criterion() -> None:
    assert titles(ADDRESS) == [
        "Show the customer's address on a job",
        "Test: the app shows the customer's address when a technician opens a job",
        "Document for technicians how to see the customer's address on a job",
    ]


def test_a_data_story_stores_its_records() -> None:
    planned = titles(AVAILABILITY)
    assert planned[0] == "Store technician availability"
    assert "Test: their availability is saved" in planned
    assert not any(t.startswith("Show ") for t in planned)


def test_different_stories_get_different_subtasks() -> None:
    every = [titles(s) for s in (ADDRESS, AVAILABILITY, REASSIGN, SEARCH)]
    assert len({tuple(t) for t in every}) == len(every)
    assert not set(every[0]) & set(every[1])
    for planned in every:
        assert not any(t.startswith(("Implement: ", "Document: ")) for t in planned)


def test_an_api_story_with_a_role_and_a_notification() -> None:
    draft = logic.offline_draft(REASSIGN, SubtaskOptions(min_per_story=1, max_per_story=10))
    planned = [t.title for t in draft.subtasks]
    assert planned[:4] == [
        "Persist changes to a job",
        "Add API to reassign a job",
        "Notify the technician",
        "Allow only admins to reassign a job",
    ]
    assert "Test: the technician is notified" in planned
    assert "Test: it is refused when they try to reassign a job" in planned
    notify = draft.subtasks[2]
    assert notify.depends_on == [0, 1]  # after the record and the API


def test_a_time_limit_gets_measuring_and_tuning() -> None:
    draft = logic.offline_draft(SEARCH, DEFAULTS)
    tuning = [t for t in draft.subtasks if t.title == "Measure and tune to stay within 2 seconds"]
    assert len(tuning) == 1
    assert tuning[0].kind is SubtaskKind.OPS


def test_hours_grow_with_the_story_and_stay_within_half_an_hour_and_16() -> None:
    small = logic.offline_draft(
        story(*_fields(AVAILABILITY), points=1), SubtaskOptions(min_per_story=1)
    ).subtasks[0]
    large = logic.offline_draft(
        story(*_fields(AVAILABILITY), points=13), SubtaskOptions(min_per_story=1)
    ).subtasks[0]
    assert 0.5 <= small.estimate_hours < large.estimate_hours <= 16


def _fields(planned: StoryInContext) -> tuple[str, str, str, list[AcceptanceCriterion], str]:
    s = planned.story
    return s.title, s.as_a, s.i_want, list(s.acceptance_criteria), planned.requirements[0].text


@pytest.mark.parametrize(("low", "high"), [(1, 1), (1, 2), (2, 3), (3, 6), (8, 12), (20, 20)])
@pytest.mark.parametrize("tests", [True, False])
@pytest.mark.parametrize("docs", [True, False])
def test_options_are_respected_for_every_story(
    low: int, high: int, tests: bool, docs: bool
) -> None:
    opts = SubtaskOptions(
        min_per_story=low, max_per_story=high, include_tests=tests, include_docs=docs
    )
    for planned in (ADDRESS, AVAILABILITY, REASSIGN, SEARCH):
        draft = logic.offline_draft(planned, opts)
        logic.validate(opts)(draft)
        kinds = {t.kind for t in draft.subtasks}
        assert low <= len(draft.subtasks) <= high
        assert tests or SubtaskKind.TEST not in kinds
        assert docs or SubtaskKind.DOCS not in kinds
        assert all(0.5 <= t.estimate_hours <= 16 for t in draft.subtasks)
        assert all(d < n for n, t in enumerate(draft.subtasks) for d in t.depends_on)


def test_the_plan_is_deterministic() -> None:
    assert logic.offline_draft(REASSIGN, DEFAULTS) == logic.offline_draft(REASSIGN, DEFAULTS)


@pytest.mark.parametrize(
    "worst", [" " * 200_000, "notified " * 25_000, "within 2 " * 25_000, "only not " * 25_000]
)
def test_the_worst_text_is_planned_in_linear_time(worst: str) -> None:
    planned = story(
        "Story",
        "user",
        worst or "x",
        [criterion("a user", worst + "x", worst + "x")],
        worst + "x",
    )
    started = time.process_time()
    logic.offline_draft(planned, DEFAULTS)
    elapsed = time.process_time() - started
    print(f"{len(worst)} characters planned in {elapsed:.3f} s")
    assert elapsed < 1.0
