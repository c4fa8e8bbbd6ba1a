"""Where the quality corpus's documents are.

The gold lists (our hand-checked work) live in ``tests/perf/corpus/<slug>/gold.json``. The
documents themselves are other people's files, brought in with the search tool's ``fetch``,
and what ``fetch`` brings is not committed by developers: data files are kept only under the
steering repository's ``shared/``. So a document is looked for beside its gold list (a local,
git-ignored copy) and then in ``../shared/quality-corpus/<slug>/`` (or the folder named by
``CARDFLOW_QUALITY_CORPUS``); the corpus README names each one's repository, path and commit.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CORPUS = REPO_ROOT / "tests" / "perf" / "corpus"


def document_roots() -> list[Path]:
    roots = [CORPUS]
    if os.environ.get("CARDFLOW_QUALITY_CORPUS"):
        roots.append(Path(os.environ["CARDFLOW_QUALITY_CORPUS"]))
    roots.append(REPO_ROOT.parent / "shared" / "quality-corpus")
    return roots


def document_path(slug: str, file_name: str) -> Path | None:
    """The document of gold list ``slug``, or None when no copy is on this machine."""
    for root in document_roots():
        candidate = root / slug / file_name
        if candidate.is_file():
            return candidate
    return None
