"""Pure: DESIGN.md's run object, from one consistent snapshot of a run.

The object splits in two: what a version of the run determines (counts, stages, errors,
usage...), computed once per snapshot, and what the clock moves (elapsed, the ETA, each
running item's elapsed), computed at each answer. Under one version only the second part may
differ, which is what the weak ETag says (``etag``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.gateway.readmodel import runview
from services.gateway.readmodel.facts import as_utc


def iso(value: datetime | None) -> str | None:
    aware = as_utc(value)
    return aware.isoformat() if aware is not None else None


@dataclass(frozen=True, slots=True)
class RunSnapshot:
    """A run's row and its items as one transaction saw them."""

    tenant_id: str
    run_id: str
    version: int
    created_at: datetime
    finished_at: datetime | None
    max_running: int
    facts: runview.RunFacts
    fixed: dict[str, Any]
    """Every field of the run object the clock does not move."""

    @property
    def clock_moves(self) -> bool:
        """Whether answers under this version differ with time (elapsed runs on)."""
        return self.finished_at is None


def snapshot(row: Any, facts: runview.RunFacts) -> RunSnapshot:
    created = as_utc(row.created_at)
    assert created is not None  # the column is NOT NULL
    stages = runview.stages_of(row.stage)
    fixed = {
        "id": row.run_id,
        "project_id": row.project_id,
        "stage": row.stage,
        "status": row.status,
        "created_at": iso(created),
        "started_at": iso(row.started_at),
        "finished_at": iso(row.finished_at),
        "counts": runview.counts(facts.items),
        "stages": {
            stage: runview.counts(i for i in facts.items if i.stage == stage) for stage in stages
        },
        "stages_done": [s for s in stages if runview.stage_done(facts, s)],
        "usage": {
            "llm_calls": row.llm_calls,
            "input_tokens": row.input_tokens,
            "output_tokens": row.output_tokens,
            "cost_usd": round(row.cost_usd, 6),
        },
        "errors": runview.errors(facts.items),
        "options": json.loads(row.options),
        "version": row.version,
        "updated_at": iso(row.updated_at),
    }
    return RunSnapshot(
        tenant_id=row.tenant_id,
        run_id=row.run_id,
        version=row.version,
        created_at=created,
        finished_at=as_utc(row.finished_at),
        max_running=max(1, row.max_running),
        facts=facts,
        fixed=fixed,
    )


def elapsed_seconds(run: RunSnapshot, now: datetime) -> float:
    return round(((run.finished_at or now) - run.created_at).total_seconds(), 1)


def render(run: RunSnapshot, now: datetime, *, elapsed_floor: float = 0.0) -> dict[str, Any]:
    """The run object at ``now``. ``elapsed_floor``: the elapsed this run was last answered
    with, so a clock stepping back (or two replicas' clocks) never makes it go back."""
    finished = runview.is_finished(run.facts)
    clocked = {
        "elapsed_seconds": max(elapsed_seconds(run, now), elapsed_floor),
        "eta_seconds": runview.eta_seconds(run.facts.items, now, run.max_running, finished),
        "in_progress": [
            i | {"started_at": iso(i["started_at"])}
            for i in runview.in_progress(run.facts.items, now)
        ],
    }
    out: dict[str, Any] = {}
    # The order of DESIGN.md's run object, which people reading it expect.
    for key, value in run.fixed.items():
        if key == "counts":
            out["elapsed_seconds"] = clocked["elapsed_seconds"]
            out["eta_seconds"] = clocked["eta_seconds"]
            out["counts"] = value
            out["in_progress"] = clocked["in_progress"]
        else:
            out[key] = value
    return out


def etag(run: RunSnapshot) -> str:
    return etag_of(run.version, clock_moves=run.clock_moves)


def etag_of(version: int, *, clock_moves: bool) -> str:
    """Strong once nothing moves under the version; weak while the clock fields do."""
    tag = f'"v{version}"'
    return f"W/{tag}" if clock_moves else tag


def matches(if_none_match: str | None, version: int) -> bool:
    """RFC 9110's weak comparison, which If-None-Match uses: W/ is ignored on both sides."""
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or f'"v{version}"' in tags
