"""A project's quality report: every check over the analyses and the backlog, counted, the
lists windowed."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from contracts.backlog import Epic, Story, Subtask
from services.gateway.quality.duplicates import TitledItem, duplicate_groups
from services.gateway.quality.junk import junk_category, junk_reason
from services.gateway.quality.questions import open_questions
from services.gateway.quality.requirement_coverage import Citation, RequirementRow, coverage
from services.gateway.quality.shape import (
    AnalysedCard,
    Counts,
    JunkItem,
    ListWindow,
    Oversized,
    QualityReport,
    RequirementCoverage,
    StoryRef,
    Thresholds,
    Untestable,
)
from services.gateway.quality.testable import untestable_reason
from services.gateway.quality.thresholds import (
    DEFAULT_LIST_LIMIT,
    MAX_STORY_POINTS,
    MAX_SUBTASK_HOURS,
    MIN_EPIC_TITLE_WORDS,
    MIN_TITLE_WORDS,
)


def requirement_rows(cards: Iterable[AnalysedCard]) -> list[RequirementRow]:
    return [
        RequirementRow(requirement_id=r.id, card_id=c.card_id)
        for c in cards
        for r in c.analysis.requirements
    ]


def build_report(
    project_id: str,
    cards: Sequence[AnalysedCard],
    epics: Sequence[Epic],
    stories: Sequence[Story],
    subtasks: Sequence[Subtask],
    *,
    offset: int = 0,
    limit: int | None = DEFAULT_LIST_LIMIT,
) -> QualityReport:
    """The project's quality report. ``limit=None`` keeps every list whole (the exports)."""
    citations = [Citation(s.story_id, s.title, s.requirement_ids) for s in stories]
    count, citing, junk_citing = coverage(requirement_rows(cards), citations)

    def refs(found: Iterable[Citation]) -> list[StoryRef]:
        return [StoryRef(story_id=c.story_id, title=c.title) for c in found]

    requirements = [
        RequirementCoverage(
            requirement_id=r.id,
            author_id=r.author_id,
            text=r.text,
            kind=r.kind.value,
            card_id=card.card_id,
            card_title=card.title,
            stories=refs(citing.get(r.id, ())),
            junk_stories=refs(junk_citing.get(r.id, ())),
        )
        for card in cards
        for r in card.analysis.requirements
    ]
    uncovered = [r for r in requirements if not r.stories]
    known = {r.requirement_id for r in requirements}
    untraced = [
        StoryRef(story_id=s.story_id, title=s.title)
        for s in stories
        if not any(i in known for i in s.requirement_ids)
    ]

    untestable = [
        Untestable(story_id=s.story_id, title=s.title, reason=reason)
        for s in stories
        if (reason := untestable_reason(s)) is not None
    ]

    duplicates = duplicate_groups([TitledItem("story", s.story_id, s.title) for s in stories])
    by_story: dict[str, list[TitledItem]] = defaultdict(list)
    for t in subtasks:
        by_story[t.story_id].append(TitledItem("subtask", t.subtask_id, t.title, t.kind.value))
    for story_id, titled in by_story.items():
        duplicates += duplicate_groups(titled, story_id=story_id)

    junk = _junk(cards, epics, stories, subtasks)
    by_category: dict[str, int] = defaultdict(int)
    for item in junk:
        by_category[junk_category(item.reason)] += 1

    oversized = _over(
        "story",
        "points",
        MAX_STORY_POINTS,
        [(s.story_id, s.title, s.estimate_points) for s in stories],
    ) + _over(
        "subtask",
        "hours",
        MAX_SUBTASK_HOURS,
        [(t.subtask_id, t.title, t.estimate_hours) for t in subtasks],
    )
    questions = open_questions(cards)

    counts = Counts(
        cards_analyzed=len(cards),
        requirements=count.total,
        requirements_covered=count.covered,
        requirements_uncovered=count.total - count.covered,
        stories=len(stories),
        subtasks=len(subtasks),
        stories_untestable=len(untestable),
        stories_without_requirement=len(untraced),
        duplicate_groups=len(duplicates),
        duplicates=sum(len(d.items) - 1 for d in duplicates),
        junk=len(junk),
        junk_by_category=dict(sorted(by_category.items())),
        oversized_stories=sum(1 for o in oversized if o.kind == "story"),
        oversized_subtasks=sum(1 for o in oversized if o.kind == "subtask"),
        open_questions=len(questions),
    )
    end = None if limit is None else offset + limit

    return QualityReport(
        project_id=project_id,
        thresholds=Thresholds(),
        counts=counts,
        coverage=count,
        window=ListWindow(offset=offset, limit=limit),
        requirements=requirements[offset:end],
        uncovered=uncovered[offset:end],
        untestable=untestable[offset:end],
        stories_without_requirement=untraced[offset:end],
        duplicates=duplicates[offset:end],
        junk=junk[offset:end],
        oversized=oversized[offset:end],
        open_questions=questions[offset:end],
    )


def _junk(
    cards: Sequence[AnalysedCard],
    epics: Sequence[Epic],
    stories: Sequence[Story],
    subtasks: Sequence[Subtask],
) -> list[JunkItem]:
    candidates: list[tuple[str, str, str, int]] = [
        ("epic", e.epic_id, e.title, MIN_EPIC_TITLE_WORDS) for e in epics
    ]
    candidates += [("story", s.story_id, s.title, MIN_TITLE_WORDS) for s in stories]
    candidates += [("subtask", t.subtask_id, t.title, MIN_TITLE_WORDS) for t in subtasks]
    candidates += [
        ("requirement", r.id, r.text, MIN_TITLE_WORDS)
        for c in cards
        for r in c.analysis.requirements
    ]
    return [
        JunkItem(kind=kind, id=item_id, title=title, reason=reason)
        for kind, item_id, title, min_words in candidates
        if (reason := junk_reason(title, min_words=min_words)) is not None
    ]


def _over(
    kind: str, unit: str, limit: float, sized: Iterable[tuple[str, str, float]]
) -> list[Oversized]:
    """The items (id, title, size) whose size is over ``limit``."""
    return [
        Oversized(kind=kind, id=item_id, title=title, size=size, unit=unit, limit=limit)
        for item_id, title, size in sized
        if size > limit
    ]
