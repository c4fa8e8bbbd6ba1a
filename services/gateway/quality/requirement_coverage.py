"""Coverage of the author's requirements: the share that a story which is not junk cites,
the one count behind the project's coverage KPI and the report."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from services.gateway.quality.junk import junk_reason
from services.gateway.quality.shape import CoverageCount


@dataclass(frozen=True, slots=True)
class RequirementRow:
    """What coverage needs of a requirement (the KPI reads only these)."""

    requirement_id: str
    card_id: str


@dataclass(frozen=True, slots=True)
class Citation:
    """What coverage needs of a story."""

    story_id: str
    title: str
    requirement_ids: Sequence[str]


def counts_toward_coverage(story_title: str) -> bool:
    """A junk story covers nothing: 'covered by `> Priority: P0`' is not covered."""
    return junk_reason(story_title) is None


def coverage(
    requirements: Sequence[RequirementRow], stories: Iterable[Citation]
) -> tuple[CoverageCount, dict[str, list[Citation]], dict[str, list[Citation]]]:
    """The share of the author's requirements (the analyses' requirements) that a story which
    is not junk cites: the one count behind the project's coverage KPI and the report.
    Also returns, per requirement id, the stories that count and the junk ones."""
    wanted = {r.requirement_id for r in requirements}
    citing: dict[str, list[Citation]] = defaultdict(list)
    junk_citing: dict[str, list[Citation]] = defaultdict(list)
    for story in stories:
        target = citing if counts_toward_coverage(story.title) else junk_citing
        for requirement_id in dict.fromkeys(story.requirement_ids):
            if requirement_id in wanted:
                target[requirement_id].append(story)
    covered = sum(1 for r in wanted if r in citing)
    total = len(wanted)
    share = round(covered / total, 4) if total else None
    return CoverageCount(covered=covered, total=total, share=share), citing, junk_citing
