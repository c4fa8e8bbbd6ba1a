"""Whether a story has an acceptance criterion that can be checked: one whose outcome says
more than the title and a few vague words."""

from __future__ import annotations

from contracts.backlog import Story
from services.gateway.quality.junk import block_markup, inline_markup
from services.gateway.quality.words import content_words, stem, word_set

# Words a criterion's outcome may add to the title and still say nothing checkable.
VAGUE_OUTCOME_WORDS = word_set(
    "work works worked correct correctly expected expectation properly success successful "
    "successfully outcome match matches requirement requirements met meet done complete "
    "completed fine ok okay behave behaves behaviour behavior intended feature function "
    "functionality user system need needs able"
)


_VAGUE_STEMS = frozenset(stem(w) for w in VAGUE_OUTCOME_WORDS)


def untestable_reason(story: Story) -> str | None:
    """Why no criterion of the story can be checked, or None when one can."""
    if not story.acceptance_criteria:
        return "no acceptance criteria"
    title_words = set(content_words(story.title))
    reasons: set[str] = set()
    for criterion in story.acceptance_criteria:
        then = criterion.then.strip()
        if not then:
            reasons.add("no criterion has a 'then'")
            continue
        if block_markup(then) or inline_markup(then):
            reasons.add("the criteria's outcomes are markup")
            continue
        if set(content_words(then)) - title_words - _VAGUE_STEMS:
            return None
        reasons.add("the criteria only restate the title")
    return "; ".join(sorted(reasons))
