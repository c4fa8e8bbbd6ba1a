"""Scoring a generated backlog against a document's hand-checked gold list (pure).

A found requirement matches a gold one when their author ids are equal (FR-001 = fr-1), or
else when they share most of their words: at least ``MATCH_SHARE`` of the gold text's words
are in the found text, and of the found text's words in the gold text (both ways, so neither
a fragment nor a whole section passes for one requirement).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

MATCH_SHARE = 0.6
DUPLICATE_SHARE = 0.8
"""Two stories whose titles share this much of their words (or are equal) are duplicates."""

_WORD = re.compile(r"[0-9a-z]+")
_ID = re.compile(r"([a-z]+)[-_ ]?0*([0-9]+)([a-z]?)")
_SMALL = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "to",
        "and",
        "or",
        "in",
        "on",
        "for",
        "by",
        "with",
        "as",
        "be",
        "is",
        "are",
        "it",
        "its",
    ]
)


@dataclass(frozen=True, slots=True)
class Gold:
    id: str | None
    text: str


@dataclass(frozen=True, slots=True)
class Found:
    """A requirement the system produced: its id in the backlog, the author's id, its text."""

    requirement_id: str
    author_id: str | None
    text: str


@dataclass(frozen=True, slots=True)
class StoryRow:
    title: str
    requirement_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Score:
    gold: int
    found: int
    cited: int
    stories: int
    junk: int
    duplicates: int
    junk_titles: tuple[str, ...]
    missed: tuple[str, ...]
    markup: int = 0
    """Of the junk, the stories whose title reads as markup, metadata, a question or a
    fragment (the rest cite only requirements the gold list does not count)."""

    @property
    def found_share(self) -> float:
        return self.found / self.gold if self.gold else 1.0

    @property
    def cited_share(self) -> float:
        return self.cited / self.gold if self.gold else 1.0


def words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _SMALL}


def same_id(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return False
    left, right = _ID.fullmatch(a.strip().lower()), _ID.fullmatch(b.strip().lower())
    if left and right:
        return left.groups() == right.groups()
    return a.strip().lower() == b.strip().lower()


def matches(gold: Gold, found: Found) -> bool:
    if gold.id and found.author_id:
        return same_id(gold.id, found.author_id)
    expected, got = words(gold.text), words(found.text)
    if not expected or not got:
        return False
    shared = len(expected & got)
    return shared >= MATCH_SHARE * len(expected) and shared >= MATCH_SHARE * len(got)


def matched(gold: Sequence[Gold], found: Iterable[Found]) -> dict[int, set[str]]:
    """Gold index → the found requirement ids matching it."""
    hits: dict[int, set[str]] = {}
    for requirement in found:
        for index, entry in enumerate(gold):
            if matches(entry, requirement):
                hits.setdefault(index, set()).add(requirement.requirement_id)
    return hits


def duplicate_pairs(titles: Sequence[str]) -> int:
    sets = [words(t) for t in titles]
    pairs = 0
    for i in range(len(sets)):
        for j in range(i + 1, len(sets)):
            a, b = sets[i], sets[j]
            if titles[i].strip().lower() == titles[j].strip().lower() or (
                a and b and len(a & b) >= DUPLICATE_SHARE * max(len(a), len(b))
            ):
                pairs += 1
    return pairs


def score(
    gold: Sequence[Gold],
    found: Sequence[Found],
    stories: Sequence[StoryRow],
    junk_title: Iterable[bool],
) -> Score:
    """``junk_title`` says, per story, whether its title reads as markup, metadata, a question
    or a fragment; a story is junk when it does, or when it cites no gold requirement."""
    hits = matched(gold, found)
    gold_ids_by_found = {rid for ids in hits.values() for rid in ids}
    cited_ids = {rid for story in stories for rid in story.requirement_ids}
    cited = sum(1 for ids in hits.values() if ids & cited_ids)
    flags = list(junk_title)
    junk_titles = tuple(
        story.title
        for story, junk in zip(stories, flags, strict=True)
        if junk or not set(story.requirement_ids) & gold_ids_by_found
    )
    return Score(
        gold=len(gold),
        found=len(hits),
        cited=cited,
        stories=len(stories),
        junk=len(junk_titles),
        duplicates=duplicate_pairs([s.title for s in stories]),
        junk_titles=junk_titles,
        missed=tuple(g.id or g.text[:60] for i, g in enumerate(gold) if i not in hits),
        markup=sum(flags),
    )
