"""What each fault test observed, collected into a table for docs/reliability.md.

Every fault case calls ``record`` once with what it injected and what it measured; at the end
of the session the rows are merged into ``$CARDFLOW_FAULT_REPORT`` (default
``build/fault-report.md``; a row replaces the earlier one of its fault and backend, so runs of
parts of the suite add up). ``make test-faults`` runs every case; docs/reliability.md is that
file, checked in, so the table always comes from a real run, not from memory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ROWS: list[FaultRow] = []


@dataclass(frozen=True, slots=True)
class FaultRow:
    fault: str
    """Short name: "SIGKILL analysis mid-run"."""
    injected: str
    """How, exactly: "kill -9 of the analysis process with 3 items running; restarted"."""
    behaviour: str
    """What the system did: "run succeeded; 3 items re-run from their lease"."""
    backend: str
    """sqlite | postgresql"""
    run_status: str
    items: int
    repeated_llm_calls: int
    lost: int
    duplicates: int


def record(row: FaultRow) -> None:
    ROWS.append(row)


def render(rows: list[FaultRow]) -> str:
    header = (
        "| fault | injected | what the system did | backend | run | items | "
        "LLM calls repeated | items lost | duplicates |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
    )
    body = "".join(
        f"| {r.fault} | {r.injected} | {r.behaviour} | {r.backend} | {r.run_status} | "
        f"{r.items} | {r.repeated_llm_calls} | {r.lost} | {r.duplicates} |\n"
        for r in rows
    )
    return header + body


def merge(existing: str, rows: list[FaultRow]) -> str:
    """The table of ``existing`` with ``rows`` added: a row of the same fault and backend
    replaces the older one, so runs of parts of the suite build up the whole table instead
    of each overwriting the last."""
    fresh = {(r.fault, r.backend) for r in rows}
    kept = []
    for line in existing.splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 9 and (cells[0], cells[3]) not in fresh:
            kept.append(line + "\n")
    header_only = render([])
    return header_only + "".join(kept) + render(rows)[len(header_only) :]


def write(rows: list[FaultRow]) -> Path | None:
    if not rows:
        return None
    path = Path(os.environ.get("CARDFLOW_FAULT_REPORT", "build/fault-report.md"))
    path.parent.mkdir(parents=True, exist_ok=True)
    existing = path.read_text(encoding="utf-8") if path.exists() else ""
    path.write_text(merge(existing, rows), encoding="utf-8")
    return path
