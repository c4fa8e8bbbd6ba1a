"""Salient words of a text, for the offline drafts' grouping and titles (pure)."""

from __future__ import annotations

import re
from collections import Counter

STOPWORDS = frozenset(
    ["a", "about", "above", "after", "again", "against", "all", "also", "am", "an", "and", "any", "are", "as", "at", "be", "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "could", "did", "do", "does", "doing", "down", "during", "each", "few", "for", "from", "further", "had", "has", "have", "having", "he", "her", "here", "hers", "him", "his", "how", "i", "if", "in", "into", "is", "it", "its", "itself", "just", "let", "lets", "like", "make", "may", "me", "might", "more", "most", "must", "my", "need", "needs", "no", "nor", "not", "now", "of", "off", "on", "once", "only", "or", "other", "our", "ours", "out", "over", "own", "same", "shall", "she", "should", "so", "some", "such", "than", "that", "the", "their", "theirs", "them", "then", "there", "these", "they", "this", "those", "through", "to", "too", "under", "until", "up", "use", "used", "uses", "using", "very", "via", "want", "wants", "was", "we", "were", "what", "when", "where", "which", "while", "who", "whom", "why", "will", "with", "within", "without", "would", "you", "your", "yours", "able", "allow", "allows", "support", "supports", "system", "user", "users", "new", "get", "gets", "set", "sets", "per", "each", "every", "page", "feature", "card", "cards", "able", "also", "should", "etc", "e.g", "i.e", "one", "two", "three", "first", "second"]
)
_WORD = re.compile(r"[a-zA-Z][a-zA-Z\-]{2,}")


def keywords(text: str) -> list[str]:
    """Lower-cased content words of ``text``, in order, stopwords and short words removed."""
    return [
        w
        for w in (m.group(0).lower().strip("-") for m in _WORD.finditer(text))
        if w not in STOPWORDS and len(w) > 3
    ]


def top_keywords(texts: list[str], count: int) -> list[str]:
    """The most frequent keywords across texts; ties broken by first appearance."""
    order: dict[str, int] = {}
    counts: Counter[str] = Counter()
    for text in texts:
        for word in keywords(text):
            order.setdefault(word, len(order))
            counts[word] += 1
    return sorted(counts, key=lambda w: (-counts[w], order[w]))[:count]


def jaccard(a: set[str], b: set[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)
