"""A project's quality report, computed in code (DESIGN.md, "What is generated"): coverage of
the author's requirements by stories, stories without a testable criterion, duplicates and
near-duplicates, junk items, oversized items and open questions.

Pure: analyses and backlog items in, a JSON-shaped report out. Every pattern over user text
is a plain string operation (no regex), so each check is linear in the text's length; the
duplicate search is near-linear in the number of items (an inverted index on each item's
rarest words, with a bounded candidate count).

One module per check: :mod:`.junk`, :mod:`.requirement_coverage`, :mod:`.testable`,
:mod:`.duplicates`, :mod:`.questions`, over :mod:`.words`; :mod:`.report` puts them together
in the shape of :mod:`.shape`, with the bounds of :mod:`.thresholds`. This package
re-exports its public API.
"""

from __future__ import annotations

from services.gateway.quality.duplicates import TitledItem, duplicate_groups
from services.gateway.quality.junk import junk_category, junk_reason
from services.gateway.quality.questions import open_questions
from services.gateway.quality.report import build_report, requirement_rows
from services.gateway.quality.requirement_coverage import (
    Citation,
    RequirementRow,
    counts_toward_coverage,
    coverage,
)
from services.gateway.quality.shape import (
    AnalysedCard,
    CoverageCount,
    Duplicate,
    ItemRef,
    JunkItem,
    Oversized,
    QualityReport,
    QuestionOut,
    RequirementCoverage,
    StoryRef,
    Untestable,
)
from services.gateway.quality.testable import untestable_reason
from services.gateway.quality.thresholds import (
    DEFAULT_LIST_LIMIT,
    MAX_STORY_POINTS,
    MAX_SUBTASK_HOURS,
    MIN_EPIC_TITLE_WORDS,
    NEAR_DUPLICATE_SIMILARITY,
)

__all__ = [
    "DEFAULT_LIST_LIMIT",
    "MAX_STORY_POINTS",
    "MAX_SUBTASK_HOURS",
    "MIN_EPIC_TITLE_WORDS",
    "NEAR_DUPLICATE_SIMILARITY",
    "AnalysedCard",
    "Citation",
    "CoverageCount",
    "Duplicate",
    "ItemRef",
    "JunkItem",
    "Oversized",
    "QualityReport",
    "QuestionOut",
    "RequirementCoverage",
    "RequirementRow",
    "StoryRef",
    "TitledItem",
    "Untestable",
    "build_report",
    "counts_toward_coverage",
    "coverage",
    "duplicate_groups",
    "junk_category",
    "junk_reason",
    "open_questions",
    "requirement_rows",
    "untestable_reason",
]
