"""The quality benchmark's corpus (tests/perf/corpus/): every gold list is well formed and every
gold text really is in its document, so a typo in a gold list fails here rather than silently
lowering the benchmark's scores."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from tests.perf.corpus_files import document_path

CORPUS = Path(__file__).resolve().parents[1] / "perf" / "corpus"
KINDS = frozenset({"functional", "non_functional", "constraint", "success_criterion"})
FIELDS = frozenset({"file", "shape", "source", "licence", "requirements", "questions", "notes"})

# Both patterns are linear: a tag is '<' then non-'>' characters then '>'; a word is a run of
# letters and digits. Markup (**, `, |, list markers, <br>) therefore never reaches the words.
_TAG = re.compile(r"<[^<>\n]{0,200}>")
_WORD = re.compile(r"[^\W_]+")


def words(text: str) -> str:
    """The text as one lower-case line of its words, padded so a search matches whole words."""
    return " " + " ".join(_WORD.findall(_TAG.sub(" ", text).lower())) + " "


def gold_files() -> list[Path]:
    return sorted(CORPUS.glob("*/gold.json"))


@cache
def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


@cache
def document_words(path: Path) -> str:
    gold = load(path)
    document = document_path(path.parent.name, gold["file"])
    if document is None:
        pytest.skip(
            f"{path.parent.name}/{gold['file']} is not on this machine: fetched documents are "
            "not committed (tests/perf/corpus_files.py says where they are looked for)"
        )
    return words(document.read_text(encoding="utf-8"))


def test_corpus_has_enough_documents_of_enough_shapes() -> None:
    golds = [load(p) for p in gold_files()]
    assert len(golds) >= 8
    assert len({g["shape"] for g in golds}) >= 5


@pytest.mark.parametrize("path", gold_files(), ids=lambda p: p.parent.name)
def test_gold_schema(path: Path) -> None:
    gold = load(path)
    assert set(gold) == FIELDS
    for field in ("file", "shape", "source", "licence", "notes"):
        assert isinstance(gold[field], str), field
        assert gold[field].strip(), field
    assert "/" not in gold["file"]
    assert gold["file"].strip()
    assert gold["requirements"], "a document with no requirements measures nothing"
    for requirement in gold["requirements"]:
        assert set(requirement) == {"id", "kind", "text"}
        assert requirement["kind"] in KINDS
        assert requirement["id"] is None or (
            isinstance(requirement["id"], str) and requirement["id"].strip()
        )
        assert isinstance(requirement["text"], str)
        assert requirement["text"].strip()
    assert all(isinstance(q, str) and q.strip() for q in gold["questions"])


@pytest.mark.parametrize("path", gold_files(), ids=lambda p: p.parent.name)
def test_gold_ids_unique(path: Path) -> None:
    ids = [r["id"].lower() for r in load(path)["requirements"] if r["id"]]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("path", gold_files(), ids=lambda p: p.parent.name)
def test_gold_texts_are_in_the_document(path: Path) -> None:
    gold = load(path)
    text = document_words(path)
    texts = [r["text"] for r in gold["requirements"]] + gold["questions"]
    missing = [t for t in texts if words(t) not in text]
    assert not missing


def test_words_ignore_markup_but_keep_every_word() -> None:
    line = "- **FR-001**: System MUST `sync` | arrows<br>- fast"
    assert words(line) == " fr 001 system must sync arrows fast "
    assert words("FR-001: System MUST sync") in words(line)
    assert words("FR-001: System MUST snyc") not in words(line)


def test_words_is_linear_on_pathological_input() -> None:
    # Would take seconds with a backtracking pattern; these finish in milliseconds.
    assert words("<" * 200_000).strip() == ""
    assert words("a" * 200_000).strip() == "a" * 200_000
