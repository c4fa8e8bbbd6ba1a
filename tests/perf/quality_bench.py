"""Backlog quality benchmark: every document of ``tests/perf/corpus/`` through the document
reader, analysis, epics, stories and subtasks, scored against its hand-checked gold list.

    .venv/bin/python tests/perf/quality_bench.py [--only SLUG] [--details]

Per document and overall it prints: the author's requirements (gold), how many the analysis
found, how many a story cites, the stories, the junk stories (a title that reads as markup,
metadata, a question or a fragment, or a story that cites none of the author's requirements)
and duplicate story pairs. Beside it, the same scores for a baseline measured in the same run:
a reader that takes every non-blank line as a requirement and a story (what a line-splitting
tool produces), so the table shows how far the structure-aware reading is from it.

The stages run in process through the same code the services run (each stage's
``logic.llm_request`` through the one LLM client): the offline provider by default, the model
at ``CARDFLOW_LLM_BASE_URL`` when that is set (then it measures that model).

A script, not a pytest test: it reports, it asserts nothing (exit 0), except that it exits 1
when a document cannot be read at all.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from contracts.backlog import Story  # noqa: E402
from contracts.events import SubtaskOptions  # noqa: E402
from services.analysis import logic as analysis  # noqa: E402
from services.epics import llm_grouping  # noqa: E402
from services.epics import logic as epics  # noqa: E402
from services.epics.app import group_by_llm  # noqa: E402
from services.gateway.ingest import split_upload  # noqa: E402
from services.gateway.ingest.model import UploadLimits  # noqa: E402
from services.gateway.quality import junk_reason  # noqa: E402
from services.runtime.llm import LLMClient, LLMError, build_llm_client  # noqa: E402
from services.runtime.settings import Settings  # noqa: E402
from services.stories import logic as stories  # noqa: E402
from services.subtasks import logic as subtasks  # noqa: E402
from tests.perf.corpus_files import CORPUS, document_path  # noqa: E402
from tests.perf.quality_score import (  # noqa: E402
    Found,
    Gold,
    Score,
    StoryRow,
    duplicate_pairs,
    score,
)

PROJECT = "bench"


@dataclass(frozen=True, slots=True)
class Document:
    slug: str
    shape: str
    path: Path
    gold: tuple[Gold, ...]


@dataclass(frozen=True, slots=True)
class Backlog:
    found: list[Found]
    stories: list[Story]
    epics: int
    subtasks: int
    seconds: float
    failed: Counter[str] = field(default_factory=Counter)
    """Calls that failed for good, by "stage: error code" (offline: none)."""


def load_corpus(only: str | None = None) -> tuple[list[Document], list[str]]:
    """The documents on this machine, and the slugs of gold lists whose document is not."""
    documents, missing = [], []
    for gold_file in sorted(CORPUS.glob("*/gold.json")):
        slug = gold_file.parent.name
        if only and slug != only:
            continue
        data = json.loads(gold_file.read_text())
        gold = tuple(Gold(r.get("id"), r["text"]) for r in data["requirements"])
        path = document_path(slug, data["file"])
        if path is None:
            missing.append(slug)
        else:
            documents.append(Document(slug, data["shape"], path, gold))
    return documents, missing


async def _ask(llm: LLMClient, request: Any, failed: Counter[str]) -> Any | None:
    """One stage's call; a call that fails for good (a weak model's invalid answer, say) is
    what the pipeline would record as a failed item: counted, and its output missing."""
    try:
        return (await llm.generate(request)).output
    except LLMError as error:
        failed[f"{request.stage}: {error.code.value}"] += 1
        return None


async def generate(document: Document, llm: LLMClient) -> Backlog:
    """The backlog the pipeline makes of ``document``."""
    started = time.perf_counter()
    failed: Counter[str] = Counter()
    drafts = split_upload(document.path.name, None, document.path.read_bytes(), UploadLimits())
    analysed = []
    for position, draft in enumerate(drafts):
        card = analysis.Card(
            f"{document.slug}-{position}",
            PROJECT,
            draft.title,
            draft.body,
            position,
            draft.document,
        )
        output = await _ask(llm, analysis.llm_request(card), failed)
        if output is None:
            continue
        analysed.append(
            epics.AnalysedCard(
                card.card_id, card.title, analysis.to_analysis(card, output), position
            )
        )
    found = [
        Found(r.id, r.author_id, r.text) for card in analysed for r in card.analysis.requirements
    ]
    all_stories: list[Story] = []
    subtask_count = 0
    groupings = await group(llm, analysed)
    options = SubtaskOptions()
    for order, grouping in enumerate(groupings):
        covered = epics.covered(analysed, grouping.requirement_ids)
        drafted = await _ask(llm, epics.llm_request(grouping.title, analysed, covered), failed)
        if drafted is None:
            continue
        epic = epics.to_epic(PROJECT, grouping.epic_id, order, analysed, covered, drafted)
        written = await _ask(llm, stories.llm_request(epic), failed)
        if written is None:
            continue
        epic_stories = stories.to_stories(epic, written)
        all_stories += epic_stories
        for story in epic_stories:
            context = stories.in_context(epic, story)
            planned = await _ask(llm, subtasks.llm_request(context, options), failed)
            if planned is not None:
                subtask_count += len(subtasks.to_subtasks(story, planned))
    seconds = time.perf_counter() - started
    return Backlog(found, all_stories, len(groupings), subtask_count, seconds, failed)


async def group(llm: LLMClient, analysed: list[epics.AnalysedCard]) -> list[epics.Grouping]:
    """As the epics stage groups: by the model when one is set and the scope is worth a
    call, else (and when that call fails) by the document's structure."""
    requirements = sum(len(card.analysis.requirements) for card in analysed)
    if llm.offline or not llm_grouping.worth_asking(requirements):
        return epics.group(PROJECT, analysed)
    return (await group_by_llm(llm, PROJECT, analysed)).groups


def baseline(document: Document) -> Score:
    """Every non-blank line a requirement and a story: what splitting by lines gives."""
    lines = [
        line.strip()
        for line in document.path.read_text(errors="replace").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    found = [Found(f"L{n}", None, line) for n, line in enumerate(lines)]
    rows = [StoryRow(line[:120], (f"L{n}",)) for n, line in enumerate(lines)]
    return score(document.gold, found, rows, [junk_reason(r.title) is not None for r in rows])


def scored(document: Document, backlog: Backlog) -> Score:
    rows = [StoryRow(s.title, tuple(s.requirement_ids)) for s in backlog.stories]
    junk = [junk_reason(s.title) is not None for s in backlog.stories]
    return score(document.gold, backlog.found, rows, junk)


def _pct(part: int, whole: int) -> str:
    return f"{part}/{whole} ({100 * part / whole:.0f} %)" if whole else "0/0"


def table(rows: list[tuple[Document, Score, Score, Backlog]]) -> str:
    head = (
        "| document | shape | found | cited | stories | junk (of it markup) | duplicates | "
        "baseline found | baseline junk | epics | subtasks | s |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    totals = [0] * 10
    for document, ours, base, backlog in rows:
        lines.append(
            f"| {document.slug} | {document.shape} | {_pct(ours.found, ours.gold)} | "
            f"{_pct(ours.cited, ours.gold)} | {ours.stories} | {ours.junk} ({ours.markup}) | "
            f"{ours.duplicates} | "
            f"{_pct(base.found, base.gold)} | {base.junk}/{base.stories} | {backlog.epics} | "
            f"{backlog.subtasks} | {backlog.seconds:.2f} |"
        )
        for index, value in enumerate(
            (
                ours.gold,
                ours.found,
                ours.cited,
                ours.stories,
                ours.junk,
                ours.duplicates,
                base.found,
                base.junk,
                base.stories,
                ours.markup,
            )
        ):
            totals[index] += value
    gold, found, cited, count, junk, duplicates, b_found, b_junk, b_stories, markup = totals
    lines.append(
        f"| **all** | | {_pct(found, gold)} | {_pct(cited, gold)} | {count} | {junk} ({markup}) | "
        f"{duplicates} | {_pct(b_found, gold)} | {b_junk}/{b_stories} | | | |"
    )
    return "\n".join(lines)


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="one document (its folder name)")
    parser.add_argument("--details", action="store_true", help="list missed and junk items")
    args = parser.parse_args(argv)
    settings = Settings()
    llm = build_llm_client(settings)
    mode = f"LLM at {settings.llm_base_url}" if settings.llm_base_url else "offline provider"
    rows: list[tuple[Document, Score, Score, Backlog]] = []
    documents, missing = load_corpus(args.only)
    try:
        for document in documents:
            backlog = await generate(document, llm)
            rows.append((document, scored(document, backlog), baseline(document), backlog))
    finally:
        await llm.aclose()
    print(f"Backlog quality ({mode}; {len(rows)} documents)\n")
    print(table(rows))
    for document, _, _, backlog in rows:
        if backlog.failed:
            said = ", ".join(f"{n} {what}" for what, n in sorted(backlog.failed.items()))
            print(f"\n{document.slug}: failed calls (their output missing): {said}")
    if missing:
        print(f"\nNot on this machine (see tests/perf/corpus_files.py): {', '.join(missing)}")
    if args.details:
        for document, ours, _, backlog in rows:
            titles = [story.title for story in backlog.stories]
            pairs = [
                (a, b)
                for i, a in enumerate(titles)
                for b in titles[i + 1 :]
                if duplicate_pairs([a, b])
            ]
            if ours.missed or ours.junk_titles or pairs:
                print(f"\n{document.slug}:")
                for missed in ours.missed:
                    print(f"  missed: {missed}")
                for title in ours.junk_titles:
                    print(f"  junk:   {title}")
                for a, b in pairs:
                    print(f"  twice:  {a} | {b}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
