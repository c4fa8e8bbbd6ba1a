"""A project's quality report, computed in code (DESIGN.md, "What is generated"): coverage of
the author's requirements by stories, stories without a testable criterion, duplicates and
near-duplicates, junk items, oversized items and open questions.

Pure: analyses and backlog items in, a JSON-shaped report out. Every pattern over user text
is a plain string operation (no regex), so each check is linear in the text's length; the
duplicate search is near-linear in the number of items (an inverted index on each item's
rarest words, with a bounded candidate count).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise

from pydantic import BaseModel, ConfigDict, Field

from contracts.backlog import CardAnalysis, Epic, SourceSpan, Story, Subtask

# --- thresholds ------------------------------------------------------------------------------

MAX_STORY_POINTS = 8
MAX_SUBTASK_HOURS = 16.0
# Jaccard similarity of two titles' word shingles (words and word pairs, stop words left out)
# from which they count as near-duplicates.
NEAR_DUPLICATE_SIMILARITY = 0.8
# Candidates come only through each item's rarest words, and a word shared by more items than
# this is too common to find duplicates by: the search stays near-linear.
RARE_WORDS_PER_ITEM = 3
MAX_POSTING = 50
MIN_TITLE_WORDS = 2
# An epic names a feature area, often one word ("Reporting", "Invoicing").
MIN_EPIC_TITLE_WORDS = 1
MIN_TITLE_CHARS = 4
# A quality report's lists are bounded; the counts say how many there are in all.
DEFAULT_LIST_LIMIT = 50


def _word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())


# --- junk ------------------------------------------------------------------------------------

METADATA_KEYS = frozenset(
    {
        "version",
        "owner",
        "owners",
        "status",
        "date",
        "author",
        "authors",
        "input",
        "created",
        "updated",
        "last updated",
        "reviewer",
        "reviewers",
        "feature branch",
        "revision",
    }
)
# A text ending on one of these words stops mid-phrase ("... the first release of the").
# Particles that end phrasal verbs ("typed in", "log on", "opt out") are left out.
DANGLING_WORDS = _word_set(
    "the a an of to for with and or from that which as than into per via is are be our their "
    "its before after until unless because if when while whose but nor next"
)
# The subject is missing: "Be attached by customers from the web portal".
SUBJECTLESS_STARTS = _word_set("be been being")
ARTICLES = frozenset({"the", "a", "an"})
PREPOSITIONS = _word_set("of to for with in on at by from into per via")
CONTINUATIONS = frozenset({"and", "or", "but", "nor"})
# The headings documents group requirements under: a title that is one names no item.
SECTION_HEADINGS = frozenset(
    {
        "overview",
        "introduction",
        "background",
        "summary",
        "scope",
        "out of scope",
        "goals",
        "non-goals",
        "non goals",
        "assumptions",
        "edge cases",
        "key entities",
        "glossary",
        "notes",
        "requirements",
        "functional requirements",
        "non-functional requirements",
        "non functional requirements",
        "success criteria",
        "acceptance criteria",
        "acceptance scenarios",
        "user scenarios & testing",
        "user scenarios and testing",
        "open questions",
        "dependencies",
        "risks",
        "constraints",
    }
)
QUESTION_MARKERS = ("TBD", "TBC", "TODO")


def junk_reason(text: str, *, min_words: int = MIN_TITLE_WORDS) -> str | None:
    """Why ``text`` is not a backlog item's title or a requirement (``"markup: ..."``,
    ``"metadata: ..."``, ``"question: ..."``, ``"fragment: ..."``), or None when it reads as
    one. Linear in the text's length."""
    stripped = text.strip()
    if not stripped:
        return "fragment: empty"
    return (
        _block_markup(stripped)
        or _metadata(stripped)
        or _inline_markup(stripped)
        or _question(stripped)
        or _fragment(stripped, min_words)
    )


def junk_category(reason: str) -> str:
    """``"markup: a quote"`` -> ``"markup"``."""
    return reason.partition(":")[0]


def _block_markup(text: str) -> str | None:
    first = text[0]
    if first == ">":
        return "markup: a quote ('>')"
    if first == "|":
        return "markup: a table row"
    if first == "#":
        return "markup: a heading marker ('#')"
    if text.startswith(("```", "~~~")):
        return "markup: a code fence"
    if first == "<":
        return "markup: an HTML tag"
    if text.startswith(("- [ ]", "- [x]", "* [ ]")):
        return "markup: a checklist marker"
    lowered = text.lower()
    for keyword in ("given", "when", "then", "and"):
        for mark in ("**", "__"):
            if lowered.startswith(f"{mark}{keyword}{mark}"):
                return "markup: a bold Given/When/Then scenario step"
    return None


def _unbolded(text: str) -> str:
    return text.replace("**", "").replace("__", "").replace("`", "").strip()


def _metadata(text: str) -> str | None:
    plain = _unbolded(text)
    key, colon, _ = plain.partition(":")
    if colon and key.strip().lower() in METADATA_KEYS:
        return f"metadata: '{key.strip()}:'"
    words = plain.split(maxsplit=2)
    # "Version 0.9, owner: ..." names no key with a colon but is the document's version line.
    if len(words) >= 2 and words[0].lower() in ("version", "v", "revision", "rev"):
        number = words[1].rstrip(",;").lstrip("vV")
        if number and number.replace(".", "").isdigit():
            return f"metadata: '{words[0]} {words[1].rstrip(',;')}'"
    return None


def _inline_markup(text: str) -> str | None:
    if "**" in text or "__" in text:
        return "markup: bold marks ('**')"
    if "`" in text:
        return "markup: code marks ('`')"
    if text.count("|") >= 2:
        return "markup: table pipes"
    if "](" in text and "[" in text:
        return "markup: a Markdown link"
    return None


def _question(text: str) -> str | None:
    if text.rstrip(" .\"')]*").endswith("?"):
        return "question: ends with '?'"
    if "NEEDS CLARIFICATION" in text.upper():
        return "question: NEEDS CLARIFICATION"
    words = [w.strip(".,;:!()[]\"'*") for w in text.split()]
    for marker in QUESTION_MARKERS:
        if marker in words:
            return f"question: {marker}"
    if any(w.endswith("?") for w in text.split()):
        return "question: asks something ('?')"
    return None


def _fragment(text: str, min_words: int) -> str | None:
    raw = [w.strip(".,;:!()[]").lower() for w in text.split()]
    words = [w.strip("\"'") for w in raw]
    words = [w for w in words if w]
    if len(text) < MIN_TITLE_CHARS or len(words) < min_words:
        if " ".join(words) in SECTION_HEADINGS:
            return "fragment: a section heading, not an item"
        return f"fragment: too short ({len(words)} word{'s' if len(words) != 1 else ''})"
    if not any(any(c.isalpha() for c in w) for w in words):
        return "fragment: no words"
    if " ".join(words) in SECTION_HEADINGS:
        return "fragment: a section heading, not an item"
    if text.rstrip().endswith((":", ",", ";", "-", "\u2014", "\u2013")):
        return "fragment: ends mid-sentence"
    if words[-1] in DANGLING_WORDS:
        return f"fragment: ends on '{words[-1]}'"
    if words[0] in CONTINUATIONS:
        return f"fragment: starts with '{words[0]}'"
    if words[0] in SUBJECTLESS_STARTS:
        return f"fragment: starts with '{words[0]}' (its subject is missing)"
    # Quotes kept here: 'the "on the way" message' is no dangling "the on".
    for before, after in pairwise(raw):
        if before in ARTICLES and (after in PREPOSITIONS or after in ARTICLES):
            return f"fragment: '{before} {after}'"
    if words[:2] == ["this", "document"] or words[:2] == ["this", "prd"]:
        return "fragment: describes the document, not an item"
    return None


# --- words and shingles ----------------------------------------------------------------------

STOP_WORDS = _word_set(
    "a an the of to for with and or in on at by from that which as is are be can will shall "
    "must should may i we you they my our your their it its this these those so when then "
    "given"
)


def words_of(text: str) -> list[str]:
    """Lower-case words, punctuation and markup marks dropped (one pass over the text)."""
    out: list[str] = []
    current: list[str] = []
    for char in text.lower():
        if char.isalnum():
            current.append(char)
        elif current:
            out.append("".join(current))
            current = []
    if current:
        out.append("".join(current))
    return out


def normalised_title(text: str) -> str:
    return " ".join(words_of(text))


def _stem(word: str) -> str:
    # Crude on purpose: the plural and -ing forms of one word should meet.
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("sses", "shes", "ches", "xes", "zes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    if len(word) > 5 and word.endswith("ing"):
        return word[:-3]
    return word


def content_words(text: str) -> list[str]:
    return [_stem(w) for w in words_of(text) if w not in STOP_WORDS]


def shingles(text: str) -> frozenset[str]:
    """Words and word pairs of the text's content words."""
    words = content_words(text)
    return frozenset(words) | frozenset(f"{a} {b}" for a, b in pairwise(words))


def similarity(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


# --- the report's shape ----------------------------------------------------------------------


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class ItemRef(_Out):
    kind: str = Field(description="story, subtask, epic or requirement")
    id: str
    title: str


class StoryRef(_Out):
    story_id: str
    title: str


class RequirementCoverage(_Out):
    requirement_id: str
    author_id: str | None
    text: str
    kind: str
    card_id: str
    card_title: str
    stories: list[StoryRef] = Field(description="The stories that cite it and count.")
    junk_stories: list[StoryRef] = Field(
        default_factory=list, description="Junk stories citing it: they cover nothing."
    )


class CoverageCount(_Out):
    covered: int
    total: int
    share: float | None = Field(description="covered / total; null with no requirement.")


class Untestable(_Out):
    story_id: str
    title: str
    reason: str


class Duplicate(_Out):
    kind: str = Field(description="story or subtask")
    reason: str = Field(description="same_title or similar")
    similarity: float
    story_id: str | None = Field(description="For subtasks: the story they share.")
    items: list[ItemRef]


class JunkItem(_Out):
    kind: str
    id: str
    title: str
    reason: str


class Oversized(_Out):
    kind: str
    id: str
    title: str
    size: float
    unit: str
    limit: float


class QuestionOut(_Out):
    card_id: str
    card_title: str
    text: str
    source_span: SourceSpan | None


class Thresholds(_Out):
    max_story_points: int = MAX_STORY_POINTS
    max_subtask_hours: float = MAX_SUBTASK_HOURS
    near_duplicate_similarity: float = NEAR_DUPLICATE_SIMILARITY


class Counts(_Out):
    cards_analyzed: int
    requirements: int
    requirements_covered: int
    requirements_uncovered: int
    stories: int
    subtasks: int
    stories_untestable: int
    stories_without_requirement: int
    duplicate_groups: int
    duplicates: int = Field(description="Items beyond the first of each duplicate group.")
    junk: int
    junk_by_category: dict[str, int]
    oversized_stories: int
    oversized_subtasks: int
    open_questions: int


class ListWindow(_Out):
    offset: int
    limit: int | None = Field(description="null: every list is whole.")


class QualityReport(_Out):
    project_id: str
    thresholds: Thresholds
    counts: Counts
    coverage: CoverageCount
    window: ListWindow = Field(
        description="Each list below holds at most `limit` entries "
        "from `offset` on; `counts` gives their full lengths."
    )
    requirements: list[RequirementCoverage]
    uncovered: list[RequirementCoverage]
    untestable: list[Untestable]
    stories_without_requirement: list[StoryRef]
    duplicates: list[Duplicate]
    junk: list[JunkItem]
    oversized: list[Oversized]
    open_questions: list[QuestionOut]


# --- inputs ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AnalysedCard:
    card_id: str
    title: str
    analysis: CardAnalysis


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


# --- coverage --------------------------------------------------------------------------------


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


# --- testable criteria -----------------------------------------------------------------------

# Words a criterion's outcome may add to the title and still say nothing checkable.
VAGUE_OUTCOME_WORDS = _word_set(
    "work works worked correct correctly expected expectation properly success successful "
    "successfully outcome match matches requirement requirements met meet done complete "
    "completed fine ok okay behave behaves behaviour behavior intended feature function "
    "functionality user system need needs able"
)


_VAGUE_STEMS = frozenset(_stem(w) for w in VAGUE_OUTCOME_WORDS)


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
        if _block_markup(then) or _inline_markup(then):
            reasons.add("the criteria's outcomes are markup")
            continue
        if set(content_words(then)) - title_words - _VAGUE_STEMS:
            return None
        reasons.add("the criteria only restate the title")
    return "; ".join(sorted(reasons))


# --- duplicates ------------------------------------------------------------------------------


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


# --- open questions --------------------------------------------------------------------------


def open_questions(cards: Iterable[AnalysedCard]) -> list[QuestionOut]:
    """Each card's open questions, with their spans where the analysis gives them."""
    out: list[QuestionOut] = []
    for card in cards:
        analysis = card.analysis
        spanned = {q.text: q.source_span for q in analysis.questions}
        texts = [q.text for q in analysis.questions]
        texts += [t for t in analysis.open_questions if t not in spanned]
        for text in dict.fromkeys(texts):
            out.append(
                QuestionOut(
                    card_id=card.card_id,
                    card_title=card.title,
                    text=text,
                    source_span=spanned.get(text),
                )
            )
    return out


# --- the report ------------------------------------------------------------------------------


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

    oversized = [
        Oversized(
            kind="story",
            id=s.story_id,
            title=s.title,
            size=s.estimate_points,
            unit="points",
            limit=MAX_STORY_POINTS,
        )
        for s in stories
        if s.estimate_points > MAX_STORY_POINTS
    ] + [
        Oversized(
            kind="subtask",
            id=t.subtask_id,
            title=t.title,
            size=t.estimate_hours,
            unit="hours",
            limit=MAX_SUBTASK_HOURS,
        )
        for t in subtasks
        if t.estimate_hours > MAX_SUBTASK_HOURS
    ]
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
