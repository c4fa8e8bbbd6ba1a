"""What each fault test observed, collected into a table for docs/reliability.md.

Every fault case calls ``record`` once with what it injected and what it measured; at the end
of the session the rows are written to ``$CARDFLOW_FAULT_REPORT`` (default
``build/fault-report.md``). ``make test-faults`` runs every case; docs/reliability.md is that
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


def write(rows: list[FaultRow]) -> Path | None:
    if not rows:
        return None
    path = Path(os.environ.get("CARDFLOW_FAULT_REPORT", "build/fault-report.md"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(rows), encoding="utf-8")
    return path
