"""Offline grouping of a scope's requirements into epics by the document's own structure.

Pure and near-linear (n log n in the requirements), so 2,000 cards group in well under the
poll interval. The steps:

1. **Topics.** A card whose title names something (a feature section, a user story, a Kiro
   "Requirement N: ...") is a topic. A card whose title is a container ("Functional
   Requirements", "Success Criteria", "User Stories") names nothing: each of its requirements
   joins the topic of the same document whose words it shares most (an inverted index over
   rare words, so each requirement looks at a bounded number of candidates); those sharing too
   little stay together as a topic named by the nearest heading above that names something.
2. **Epics.** Neighbouring topics of one document (authors put related things side by side)
   merge, best pair first (a heap of neighbour pairs), while a group is smaller than
   ``MIN_REQUIREMENTS``, or while both sit under one naming heading below the document's title
   or share many words, and never past ``MAX_REQUIREMENTS``.

An epic's id follows from the requirement ids it covers (``epic_id``), so the same grouping
gives the same epics on every rerun.
"""

from __future__ import annotations

import heapq
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from contracts.backlog import CardAnalysis, Requirement
from services.epics.keywords import jaccard, keywords
from services.runtime.restatements import originals
from services.runtime.text import shorten, stable_id

MIN_REQUIREMENTS = 4
"""A smaller group merges with a neighbour when one fits."""
MAX_REQUIREMENTS = 16
"""No merge makes a group larger than this (a single large section may still be larger)."""
STRONG_SIMILARITY = 0.2
"""Neighbours sharing this much of their words merge even when both are big enough."""
JOIN_SIMILARITY = 0.08
"""A container's requirement joins a topic only when it shares at least this much."""
COMMON_WORD_SHARE = 0.5
"""A word in more than this share of a document's topics says nothing about which one."""
CANDIDATES = 64
"""Topics a requirement is compared with at most (the ones sharing the most rare words)."""

# Headings that hold requirements without naming what they are about; compared folded
# (lower case, numbering and punctuation gone).
CONTAINER_HEADINGS = frozenset(
    (
        "requirements",
        "functional requirements",
        "non functional requirements",
        "nonfunctional requirements",
        "functional",
        "non functional",
        "nfr",
        "nfrs",
        "key requirements",
        "system requirements",
        "product requirements",
        "business requirements",
        "technical requirements",
        "user requirements",
        "detailed requirements",
        "requirements document",
        "product requirements document",
        "prd",
        "specification",
        "functional specification",
        "feature specification",
        "spec",
        "user scenarios testing",
        "user scenarios and testing",
        "user scenarios",
        "user stories",
        "stories",
        "story list",
        "epic list",
        "epics",
        "acceptance criteria",
        "acceptance scenarios",
        "success criteria",
        "measurable outcomes",
        "success metrics",
        "metrics",
        "kpis",
        "features",
        "feature list",
        "core features",
        "key features",
        "mvp",
        "mvp features",
        "mvp scope",
        "scope",
        "in scope",
        "capabilities",
        "overview",
        "details",
        "summary",
        "must have",
        "should have",
        "could have",
        "nice to have",
    )
)
_FOLD = re.compile(r"[^0-9a-z]+")
# "User Story 1 - ", "Requirement 3:", "3.2", "Feature:", "Epic 2 —" before a heading's name.
_LEAD = re.compile(
    r"^(?:(?:user\s+story|story|requirement|req|feature|epic|section|us|fr)\s*[-#.]?\s*"
    r"[0-9]{0,4}[a-z]?\s*[:.\-\u2013\u2014]\s*|[0-9]{1,3}(?:\.[0-9]{1,3}){0,4}\.?\s+)",
    re.IGNORECASE,
)
_TRAIL = re.compile(r"\s*\((?:priority|p)[^()]{0,40}\)\s*$", re.IGNORECASE)
_DOC_PREFIX = re.compile(
    r"^(?:feature\s+specification|product\s+requirements(?:\s+document)?|prd|"
    r"requirements\s+document|specification)\s*[:\-\u2013\u2014]\s*",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class CardInScope:
    card_id: str
    title: str
    position: int
    analysis: CardAnalysis


@dataclass(frozen=True, slots=True)
class Grouping:
    """One epic to be: the requirements it covers, in document order, and their cards."""

    epic_id: str
    title: str
    requirement_ids: tuple[str, ...]
    card_ids: tuple[str, ...]


def terms(text: str) -> set[str]:
    """The content words of ``text``, crudely stemmed so "shared links" meets "share a link"
    (linear: suffixes only, no pattern)."""
    return {_stem(word) for word in keywords(text)}


def _stem(word: str) -> str:
    for suffix, keep in (("ing", 5), ("ies", 4), ("ed", 4), ("es", 4), ("s", 3)):
        if (
            word.endswith(suffix)
            and len(word) - len(suffix) >= keep - 1
            and not word.endswith("ss")
        ):
            word = word[: -len(suffix)]
            break
    return word.removesuffix("e") if len(word) > 4 else word


def epic_id(project_id: str, requirement_ids: Iterable[str]) -> str:
    return stable_id(project_id, "epic", *sorted(requirement_ids))


def heading_name(heading: str) -> str:
    """What a heading names, without its numbering, "User Story 1 -" lead or "(Priority: P1)"
    tail; "" for a container heading ("Functional Requirements") that names nothing."""
    text = " ".join(heading.split())[:200]
    text = _DOC_PREFIX.sub("", text)
    text = _TRAIL.sub("", _LEAD.sub("", text)).strip(" -:.\u2013\u2014")
    folded = " ".join(_FOLD.sub(" ", text.lower()).split())
    if not folded or folded in CONTAINER_HEADINGS or folded.isdigit():
        return ""
    return text


@dataclass(frozen=True, slots=True)
class _Item:
    order: tuple[int, int]
    """(card position, index in the card): document order."""
    requirement: Requirement
    card_id: str


@dataclass
class _Topic:
    title: str
    anchor: tuple[int, str] | None
    """The deepest naming heading above it and its depth (0: the document's title)."""
    items: list[_Item]
    words: set[str]
    rest: bool = False
    """Made of a container's requirements that joined no topic: named by a heading above."""

    @property
    def order(self) -> tuple[int, int]:
        return self.items[0].order


@dataclass
class _Group:
    topics: list[_Topic]
    size: int
    words: set[str]
    anchor: tuple[int, str] | None
    single: bool
    """Every topic holds one requirement (tracker records, one-line cards)."""
    version: int = 0
    alive: bool = True


def group_requirements(project_id: str, cards: list[CardInScope]) -> list[Grouping]:
    """The scope's requirements as epics, in document order (see the module's docstring)."""
    documents: dict[str, tuple[list[_Topic], list[tuple[tuple[int, str] | None, str, _Item]]]]
    documents = defaultdict(lambda: ([], []))
    for card in sorted(cards, key=lambda c: (c.position, c.card_id)):
        path = card.analysis.heading_path
        topics, loose = documents[path[0] if path else ""]
        named = [(depth, name) for depth, name in enumerate(map(heading_name, path)) if name]
        anchor = named[-1] if named else None
        items = [
            _Item((card.position, index), requirement, card.card_id)
            for index, requirement in enumerate(card.analysis.requirements)
        ]
        if not items:
            continue
        own = heading_name(card.title)
        if own:
            words = terms(own).union(*(terms(i.requirement.text) for i in items))
            topics.append(_Topic(own, anchor, items, words))
        else:
            fallback = anchor[1] if anchor else shorten(" ".join(card.title.split()), 80)
            loose += [(anchor, fallback or "Requirements", item) for item in items]
    epics: list[tuple[tuple[int, int], Grouping]] = []
    for topics, loose in documents.values():
        topics = topics + _place(topics, loose)
        topics.sort(key=lambda t: t.order)
        merged_groups = _merge_neighbours(topics, _common_words(topics))
        titles = _titles(merged_groups)
        for merged, title in zip(merged_groups, titles, strict=True):
            items = sorted((i for t in merged for i in t.items), key=lambda i: i.order)
            ids = tuple(i.requirement.id for i in items)
            card_ids = tuple(dict.fromkeys(i.card_id for i in items))
            grouping = Grouping(epic_id(project_id, ids), title, ids, card_ids)
            epics.append((items[0].order, grouping))
    grouped = [grouping for _, grouping in sorted(epics, key=lambda pair: pair[0])]
    return restatements_together(project_id, cards, grouped)


def restatements_together(
    project_id: str, cards: list[CardInScope], groupings: list[Grouping]
) -> list[Grouping]:
    """A requirement the author states twice ("Throughput: 1000+ concurrent users" among
    the NFRs and again among the benchmarks) joins the epic of its first statement, so one
    story covers both (``services.runtime.restatements``). Epic ids follow the new sets."""
    ordered = [
        (requirement, card.card_id)
        for card in sorted(cards, key=lambda c: (c.position, c.card_id))
        for requirement in card.analysis.requirements
    ]
    moves = originals([requirement.text for requirement, _ in ordered])
    if not moves:
        return groupings
    position = {requirement.id: index for index, (requirement, _) in enumerate(ordered)}
    card_of = {requirement.id: card_id for requirement, card_id in ordered}
    home = {rid: number for number, g in enumerate(groupings) for rid in g.requirement_ids}
    members: list[list[str]] = [list(g.requirement_ids) for g in groupings]
    for restatement, original in moves.items():
        moved, target = ordered[restatement][0].id, ordered[original][0].id
        if moved not in home or target not in home or home[moved] == home[target]:
            continue
        members[home[moved]].remove(moved)
        members[home[target]].append(moved)
        home[moved] = home[target]
    regrouped: list[tuple[int, Grouping]] = []
    for grouping, ids in zip(groupings, members, strict=True):
        if not ids:
            continue
        ids.sort(key=lambda rid: position.get(rid, len(position)))
        card_ids = tuple(dict.fromkeys(card_of.get(rid, "") for rid in ids))
        same = tuple(ids) == grouping.requirement_ids
        regrouped.append(
            (
                position.get(ids[0], len(position)),
                grouping
                if same
                else Grouping(epic_id(project_id, ids), grouping.title, tuple(ids), card_ids),
            )
        )
    return [grouping for _, grouping in sorted(regrouped, key=lambda pair: pair[0])]


def _place(
    topics: list[_Topic], loose: list[tuple[tuple[int, str] | None, str, _Item]]
) -> list[_Topic]:
    """Each requirement of a container card joins the topic it shares most words with (among a
    bounded set of candidates found through rare words); the rest become topics of their own,
    one per naming heading above them. Returns those new topics."""
    index: dict[str, list[int]] = defaultdict(list)
    for number, topic in enumerate(topics):
        for word in topic.words:
            index[word].append(number)
    common = max(3, int(COMMON_WORD_SHARE * len(topics)))
    shared = _common_words(topics)
    rest: dict[str, _Topic] = {}
    for anchor, fallback, item in loose:
        words = terms(item.requirement.text)
        hits: Counter[int] = Counter()
        for word in words:
            posting = index.get(word, ())
            if len(posting) <= min(common, CANDIDATES):
                hits.update(posting)
        best: tuple[float, int] | None = None
        for number, _ in hits.most_common(CANDIDATES):
            score = jaccard(words - shared, topics[number].words - shared)
            if score >= JOIN_SIMILARITY and (best is None or score > best[0]):
                best = (score, number)
        if best is not None:
            topics[best[1]].items.append(item)
            continue
        if fallback not in rest:
            rest[fallback] = _Topic(fallback, anchor, [], terms(fallback), rest=True)
        rest[fallback].items.append(item)
        rest[fallback].words.update(words)
    for placed in topics:
        placed.items.sort(key=lambda i: i.order)
    return list(rest.values())


def _common_words(topics: list[_Topic]) -> set[str]:
    """Words in more than ``COMMON_WORD_SHARE`` of a document's topics ("album" in a photo
    album spec): they make every pair look alike, so similarity leaves them out."""
    if len(topics) < 3:
        return set()
    counts = Counter(word for topic in topics for word in topic.words)
    limit = COMMON_WORD_SHARE * len(topics)
    return {word for word, count in counts.items() if count > limit}


def _merge_neighbours(topics: list[_Topic], common: set[str]) -> list[list[_Topic]]:
    """Neighbouring topics merged best pair first (see the module's docstring)."""
    groups = [
        _Group([t], len(t.items), t.words - common, t.anchor, len(t.items) == 1) for t in topics
    ]
    after = list(range(1, len(groups) + 1))
    before = list(range(-1, len(groups) - 1))
    heap: list[tuple[float, int, int, int, int]] = []

    def push(left: int, right: int) -> None:
        if left < 0 or right >= len(groups):
            return
        score = _merge_score(groups[left], groups[right])
        if score is not None:
            entry = (-score, left, right, groups[left].version, groups[right].version)
            heapq.heappush(heap, entry)

    for left in range(len(groups) - 1):
        push(left, left + 1)
    while heap:
        _, left, right, left_version, right_version = heapq.heappop(heap)
        a, b = groups[left], groups[right]
        if not (a.alive and b.alive) or (a.version, b.version) != (left_version, right_version):
            continue
        a.topics += b.topics
        a.size += b.size
        a.words |= b.words
        a.anchor = a.anchor if a.anchor == b.anchor else None
        a.single = a.single and b.single
        a.version += 1
        b.alive = False
        after[left] = after[right]
        if after[right] < len(groups):
            before[after[right]] = left
        push(before[left], left)
        push(left, after[left])
    return [g.topics for g in groups if g.alive]


def _merge_score(a: _Group, b: _Group) -> float | None:
    """How much two neighbours belong together, None when they must stay apart."""
    if a.size + b.size > MAX_REQUIREMENTS:
        return None
    similarity = jaccard(a.words, b.words)
    shared = a.anchor is not None and a.anchor == b.anchor
    if shared and a.anchor is not None and (a.anchor[0] >= 1 or (a.single and b.single)):
        return 2.0 + similarity
    if similarity >= STRONG_SIMILARITY:
        return 1.0 + similarity
    if _named_apart(a, b):
        return None  # two sections the author named apart stay apart, however small
    if a.size < MIN_REQUIREMENTS or b.size < MIN_REQUIREMENTS:
        return similarity + (0.05 if shared else 0.0)
    return None


def _named_apart(a: _Group, b: _Group) -> bool:
    return (
        a.anchor is not None
        and b.anchor is not None
        and min(a.anchor[0], b.anchor[0]) >= 1
        and a.anchor != b.anchor
    )


def _titles(groups: list[list[_Topic]]) -> list[str]:
    """Each epic is named by the heading all its topics sit under, when they share one that
    no other epic of the document would also be named by; else by its topics' own names."""
    shared = [_shared_anchor(topics) for topics in groups]
    counts = Counter(name for name in shared if name)
    return [
        shorten(name, 120) if name and counts[name] == 1 else _names(topics)
        for name, topics in zip(shared, groups, strict=True)
    ]


def _shared_anchor(topics: list[_Topic]) -> str:
    """The heading above them all, when the group holds two topics of its own or more."""
    anchor = topics[0].anchor
    own = [t for t in topics if not t.rest]
    if len(own) > 1 and anchor is not None and all(t.anchor == anchor for t in topics):
        return anchor[1]
    return ""


def _names(topics: list[_Topic]) -> str:
    own = [t for t in topics if not t.rest] or topics
    names = list(dict.fromkeys(t.title for t in own))
    if len(names) == 1:
        return shorten(names[0], 120)
    if len(names) <= 3:
        return shorten(", ".join(names[:-1]) + " and " + names[-1], 120)
    return shorten(f"{names[0]}, {names[1]} and {len(names) - 2} more", 120)
