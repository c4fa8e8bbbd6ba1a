"""Requirements an author wrote twice: "Throughput: Support 1000+ concurrent users" in the
non-functional list and "Throughput: 1000+ concurrent users" in the benchmarks. Both stay
requirements (the document does say them twice, and each is traced); the epics stage puts a
restatement in its original's epic and the stories stage makes one story citing both.

Two requirements restate each other when the gist of their first sentence (its content words,
parenthetical asides and the words of asking left out) shares at least ``SHARE`` of the longer
gist, the numbers of the shorter are all in the longer ("1000 users" never restates "100
users"), and they are not the same words but one in the same place ("API response time under
500ms" is not "Search response time under 500ms"). Pure and near-linear: each gist is
compared with at most ``CANDIDATES`` earlier ones that share its rarest words, and only its
first ``GIST_WORDS`` words are read.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

SHARE = 0.8
GIST_WORDS = 40
MIN_WORDS = 2
"""A gist of fewer content words says too little to be called a restatement."""
CANDIDATES = 32
COMMON = 64
"""A word in more gists than this finds no candidates: it says nothing about which."""
TEXT_CHARS = 600

_TOKEN = re.compile(r"[0-9a-z]+(?:[.,][0-9]+)*[%+]?")
_ASIDE = re.compile(r"\([^()\n]{0,200}\)")
_SENTENCE_END = re.compile(r"[.;!?](?:[ \t\n]|$)")
_IGNORED = frozenset(
    (
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
        "this",
        "that",
        "these",
        "their",
        "system",
        "product",
        "app",
        "application",
        "platform",
        "service",
        "must",
        "shall",
        "should",
        "will",
        "may",
        "can",
        "could",
        "ensure",
        "ensures",
        "support",
        "supports",
        "provide",
        "provides",
        "allow",
        "allows",
        "enable",
        "enables",
        "achieve",
        "maintain",
        "keep",
        "deliver",
        "offer",
        "able",
        "need",
        "needs",
        "required",
        "require",
        "requires",
    )
)


@dataclass(frozen=True, slots=True)
class Gist:
    sequence: tuple[str, ...]
    words: frozenset[str]
    numbers: frozenset[str]


def gist(text: str) -> Gist:
    """What a requirement says, for comparing: its first sentence's content words."""
    head = _ASIDE.sub(" ", text[:TEXT_CHARS].lower())
    end = _SENTENCE_END.search(head)
    if end is not None and end.start() > 0:
        head = head[: end.start()]
    tokens = list(dict.fromkeys(t for t in _TOKEN.findall(head) if t not in _IGNORED))
    sequence = tuple(tokens[:GIST_WORDS])
    numbers = frozenset(t for t in sequence if any(c.isdigit() for c in t))
    return Gist(sequence, frozenset(sequence), numbers)


def restates(a: Gist, b: Gist) -> bool:
    if min(len(a.words), len(b.words)) < MIN_WORDS:
        return False
    shorter, longer = (a, b) if len(a.words) <= len(b.words) else (b, a)
    if not shorter.numbers <= longer.numbers or _one_word_swapped(a, b):
        return False
    return len(a.words & b.words) >= SHARE * len(longer.words)


def _one_word_swapped(a: Gist, b: Gist) -> bool:
    """ "API response time under 500ms" and "Search response time under 500ms": one word
    put in another's place names another thing; a rephrasing moves words around."""
    if len(a.sequence) != len(b.sequence):
        return False
    return sum(x != y for x, y in zip(a.sequence, b.sequence, strict=True)) == 1


def originals(texts: Sequence[str]) -> dict[int, int]:
    """Index of each text that restates an earlier one → the index of the first text it
    restates (an original is never itself a restatement)."""
    gists = [gist(text) for text in texts]
    frequency: Counter[str] = Counter(word for g in gists for word in g.words)
    posting: dict[str, list[int]] = defaultdict(list)
    found: dict[int, int] = {}
    for index, current in enumerate(gists):
        hits: Counter[int] = Counter()
        for word in current.words:
            if frequency[word] <= COMMON:
                hits.update(posting[word])
        for earlier, _ in sorted(hits.most_common(CANDIDATES)):
            if restates(current, gists[earlier]):
                found[index] = earlier
                break
        if index not in found:
            for word in current.words:
                posting[word].append(index)
    return found
