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
from services.analysis.analyse import analyse  # noqa: E402
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


@dataclass
class Calls:
    """How the bench calls the model: at most ``concurrency`` calls at once (a server with
    several slots answers them in parallel), and whether stories get their subtasks."""

    llm: LLMClient
    concurrency: int = 1
    subtasks: bool = True
    failed: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._gate = asyncio.Semaphore(self.concurrency)

    async def ask(self, request: Any) -> Any | None:
        """One stage's call; a call that fails for good (a weak model's invalid answer, say)
        is what the pipeline would record as a failed item: counted, its output missing."""
        async with self._gate:
            try:
                return (await self.llm.generate(request)).output
            except LLMError as error:
                self.failed[f"{request.stage}: {error.code.value}"] += 1
                return None

    async def analyse(self, card: analysis.Card) -> Any | None:
        """The analysis stage's call (in parts when the card is too long for the model)."""
        async with self._gate:
            try:
                return (await analyse(self.llm, card)).output
            except LLMError as error:
                self.failed[f"analysis: {error.code.value}"] += 1
                return None


async def generate(document: Document, calls: Calls) -> Backlog:
    """The backlog the pipeline makes of ``document``."""
    started = time.perf_counter()
    calls.failed = Counter()
    drafts = split_upload(document.path.name, None, document.path.read_bytes(), UploadLimits())
    cards = [
        analysis.Card(f"{document.slug}-{position}", PROJECT, d.title, d.body, position, d.document)
        for position, d in enumerate(drafts)
    ]
    outputs = await asyncio.gather(*(calls.analyse(card) for card in cards))
    analysed = [
        epics.AnalysedCard(
            card.card_id, card.title, analysis.to_analysis(card, output), card.position
        )
        for card, output in zip(cards, outputs, strict=True)
        if output is not None
    ]
    found = [
        Found(r.id, r.author_id, r.text) for card in analysed for r in card.analysis.requirements
    ]
    groupings = await group(calls.llm, analysed)
    written = await asyncio.gather(
        *(_epic(calls, analysed, order, grouping) for order, grouping in enumerate(groupings))
    )
    all_stories = [story for epic_stories, _ in written for story in epic_stories]
    subtask_count = sum(count for _, count in written)
    seconds = time.perf_counter() - started
    return Backlog(found, all_stories, len(groupings), subtask_count, seconds, calls.failed)


async def _epic(
    calls: Calls, analysed: list[epics.AnalysedCard], order: int, grouping: epics.Grouping
) -> tuple[list[Story], int]:
    """One grouping's epic, its stories and (unless turned off) their subtasks."""
    covered = epics.covered(analysed, grouping.requirement_ids)
    drafted = await calls.ask(epics.llm_request(grouping.title, analysed, covered))
    if drafted is None:
        return [], 0
    epic = epics.to_epic(PROJECT, grouping.epic_id, order, analysed, covered, drafted)
    written = await calls.ask(stories.llm_request(epic))
    if written is None:
        return [], 0
    epic_stories = stories.to_stories(epic, written)
    if not calls.subtasks:
        return epic_stories, 0
    options = SubtaskOptions()
    planned = await asyncio.gather(
        *(
            calls.ask(subtasks.llm_request(stories.in_context(epic, story), options))
            for story in epic_stories
        )
    )
    count = sum(
        len(subtasks.to_subtasks(story, plan))
        for story, plan in zip(epic_stories, planned, strict=True)
        if plan is not None
    )
    return epic_stories, count


async def group(llm: LLMClient, analysed: list[epics.AnalysedCard]) -> list[epics.Grouping]:
    """As the epics stage groups: by the model when one is set and the scope is worth a
    call (and ``CARDFLOW_EPICS_GROUPING`` is not ``structure``), else (and when that call
    fails) by the document's structure."""
    requirements = sum(len(card.analysis.requirements) for card in analysed)
    by_structure = Settings().epics_grouping == "structure"
    if llm.offline or by_structure or not llm_grouping.worth_asking(requirements):
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
    parser.add_argument(
        "--concurrency", type=int, default=1, help="LLM calls at once (a server's slots)"
    )
    parser.add_argument(
        "--no-subtasks",
        action="store_true",
        help="stop at stories (the scores do not depend on subtasks; a slow model saves most)",
    )
    args = parser.parse_args(argv)
    settings = Settings()
    llm = build_llm_client(settings)
    calls = Calls(llm, max(1, args.concurrency), subtasks=not args.no_subtasks)
    mode = f"LLM at {settings.llm_base_url}" if settings.llm_base_url else "offline provider"
    rows: list[tuple[Document, Score, Score, Backlog]] = []
    documents, missing = load_corpus(args.only)
    try:
        for document in documents:
            backlog = await generate(document, calls)
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
