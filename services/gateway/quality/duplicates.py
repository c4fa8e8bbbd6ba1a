"""Duplicates and near-duplicates among items: the same normalised title, or similar word
shingles. Near-linear in the number of items: an inverted index on each item's rarest words,
with a bounded candidate count."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from services.gateway.quality.shape import Duplicate, ItemRef
from services.gateway.quality.thresholds import (
    MAX_POSTING,
    NEAR_DUPLICATE_SIMILARITY,
    RARE_WORDS_PER_ITEM,
)
from services.gateway.quality.words import normalised_title, shingles, similarity


@dataclass(frozen=True, slots=True)
class TitledItem:
    kind: str
    id: str
    title: str
    # Only items of one group can be near-duplicates: a test and a docs subtask on the same
    # thing share most words and are still two pieces of work (the same title is still one).
    group: str = ""


def duplicate_groups(
    items: Sequence[TitledItem], *, story_id: str | None = None
) -> list[Duplicate]:
    """Groups of items with the same normalised title or similar word shingles. Near-linear:
    candidates share one of each item's rarest words, a too common word finds none."""
    parent = list(range(len(items)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    best: dict[int, float] = {}
    exact: set[int] = set()

    def join(i: int, j: int, score: float, same: bool) -> None:
        a, b = root(i), root(j)
        if a != b:
            parent[b] = a
            merged = max(best.pop(b, 0.0), best.get(a, 0.0), score)
            best[a] = merged
            if b in exact:
                exact.discard(b)
                exact.add(a)
        else:
            best[a] = max(best.get(a, 0.0), score)
        if same:
            exact.add(root(i))

    first_of: dict[str, int] = {}
    for i, item in enumerate(items):
        key = normalised_title(item.title)
        if not key:
            continue
        if key in first_of:
            join(first_of[key], i, 1.0, True)
        else:
            first_of[key] = i

    sets = [shingles(item.title) for item in items]
    frequency: dict[str, int] = defaultdict(int)
    for words in sets:
        for word in {w for w in words if " " not in w}:
            frequency[word] += 1
    postings: dict[str, list[int]] = defaultdict(list)
    for i, words in enumerate(sets):
        singles = sorted((w for w in words if " " not in w), key=lambda w: (frequency[w], w))
        rare = [w for w in singles[:RARE_WORDS_PER_ITEM] if frequency[w] <= MAX_POSTING]
        seen: set[int] = set()
        for word in rare:
            for j in postings[word]:
                if j in seen or items[j].group != items[i].group:
                    continue
                seen.add(j)
                score = similarity(sets[i], sets[j])
                if score >= NEAR_DUPLICATE_SIMILARITY:
                    join(j, i, score, False)
            postings[word].append(i)

    members: dict[int, list[int]] = defaultdict(list)
    for i in range(len(items)):
        members[root(i)].append(i)
    groups = []
    for head, indices in members.items():
        if len(indices) < 2:
            continue
        groups.append(
            Duplicate(
                kind=items[indices[0]].kind,
                reason="same_title" if head in exact else "similar",
                similarity=round(best.get(head, 1.0), 3),
                story_id=story_id,
                items=[
                    ItemRef(kind=items[i].kind, id=items[i].id, title=items[i].title)
                    for i in indices
                ],
            )
        )
    return groups
