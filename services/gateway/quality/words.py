"""Titles as words: lower-case words in one pass, content words (stop words out, crudely
stemmed), word shingles and their Jaccard similarity. Plain string operations: linear."""

from __future__ import annotations

from itertools import pairwise


def word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())


STOP_WORDS = word_set(
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


def stem(word: str) -> str:
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
    return [stem(w) for w in words_of(text) if w not in STOP_WORDS]


def shingles(text: str) -> frozenset[str]:
    """Words and word pairs of the text's content words."""
    words = content_words(text)
    return frozenset(words) | frozenset(f"{a} {b}" for a, b in pairwise(words))


def similarity(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)
