"""Helpers of the LLM fault cases (test_llm_faults.py).

Every case works on its own project of ``CARDS_PER_CASE`` cards, each card carrying a marker
(``[lf-<case>-NN]``) in its title and body. The scripted server finds the marker in the
prompt, so a case faults chosen cards and leaves the others healthy, and counts what the
server saw per card. Later stages' prompts carry the card ids (requirement ids are
``<card id>:R<n>``), so their calls are attributed to a project by those.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import httpx

from tests.faults.report import FaultRow, record
from tests.faults.support import DESIGN_ERROR_CODES
from tests.support.scripted_llm import RecordedCall, ScriptedLLM
from tests.support.stack import wait_for_run

# response_format.json_schema.name of each stage's request (its output model's name).
STAGE_OF_SCHEMA = {
    "AnalysisDraft": "analysis",
    "EpicDraft": "epics",
    "EpicGrouping": "epics",
    "StoriesDraft": "stories",
    "SubtasksDraft": "subtasks",
}

CARDS_PER_CASE = 10
THEMES = ("schedule", "invoice", "inventory", "dispatch", "customer")
REPAIR_HINT = "Your previous answer was not usable"
TERMINAL = ("succeeded", "partial", "failed", "cancelled")


# --- the healthy server ----------------------------------------------------------------------


def stage_of(call: RecordedCall) -> str:
    stage = STAGE_OF_SCHEMA.get(call.schema_name or "")
    assert stage is not None, f"a call for an unknown output: {call.schema_name!r}"
    return stage


# --- cards with markers ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Card:
    card_id: str
    marker: str
    """Found in the card's prompt, so the scripted server can target it."""


@dataclass(frozen=True, slots=True)
class Batch:
    case: str
    project_id: str
    cards: tuple[Card, ...]

    def card(self, number: int) -> Card:
        """The card numbered ``number`` (1-based, as in its marker)."""
        return self.cards[number - 1]

    def owns(self, call: RecordedCall) -> bool:
        """The call is about this project (a marker, or a card id in a requirement id)."""
        text = call.text
        return f"[lf-{self.case}-" in text or any(c.card_id in text for c in self.cards)


def marker(case: str, number: int) -> str:
    return f"[lf-{case}-{number:02d}]"


def new_batch(client: httpx.Client, case: str, count: int = CARDS_PER_CASE) -> Batch:
    """A project of ``count`` cards; the texts are unique to the case, so the result cache
    (keyed by the card's text) never serves one case's answer to another."""
    project = client.post("/v1/projects", json={"name": f"LLM faults: {case}"})
    assert project.status_code == 201, project.text
    project_id = project.json()["id"]
    markers = [marker(case, n) for n in range(1, count + 1)]
    cards = [
        {
            "title": f"{m} {THEMES[n % len(THEMES)]} view for technicians",
            "body": (
                f"{m} Technicians need the {THEMES[n % len(THEMES)]} view for job {n}. "
                f"The {THEMES[n % len(THEMES)]} list must load within two seconds."
            ),
        }
        for n, m in enumerate(markers, start=1)
    ]
    added = client.post(f"/v1/projects/{project_id}/cards", json={"cards": cards})
    assert added.status_code == 202, added.text
    ids = added.json()["card_ids"]
    assert len(ids) == count
    return Batch(case, project_id, tuple(Card(i, m) for i, m in zip(ids, markers, strict=True)))


# --- runs --------------------------------------------------------------------------------------


def start_run(client: httpx.Client, batch: Batch, stage: str = "analysis") -> dict[str, Any]:
    """No Idempotency-Key: a second call starts a second run (the replay case needs that)."""
    response = client.post(f"/v1/projects/{batch.project_id}/runs", json={"stage": stage})
    assert response.status_code == 202, response.text
    return response.json()


def follow(client: httpx.Client, run: dict[str, Any], timeout_s: float = 120) -> dict[str, Any]:
    """The run's final snapshot, followed as a client does; counts checked on every one."""
    snapshots = wait_for_run(client, run["id"], timeout_s=timeout_s)
    for snapshot in snapshots:
        counts = snapshot["counts"]
        parts = ("pending", "running", "succeeded", "failed", "cancelled")
        assert sum(counts[p] for p in parts) == counts["total"], counts
    return snapshots[-1]


def items_of(client: httpx.Client, run_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/v1/runs/{run_id}/items")
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def run_log(client: httpx.Client, run_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/v1/runs/{run_id}/log")
    assert response.status_code == 200, response.text
    log: list[dict[str, Any]] = response.json()["log"]
    return log


def retry_delays(log: list[dict[str, Any]], item_id: str) -> list[float]:
    """The backoffs the work queue chose for an item, from its run log ("retrying in 1.2s")."""
    delays = []
    for line in log:
        found = re.search(r"retrying in ([0-9.]+)s", line["message"])
        if line.get("item") == item_id and found:
            delays.append(float(found.group(1)))
    return delays


# --- what the server saw -------------------------------------------------------------------


def calls_for(llm: ScriptedLLM, card: Card, stage: str = "analysis") -> list[RecordedCall]:
    return [c for c in llm.calls_matching(card.marker) if stage_of(c) == stage]


def analysis_calls(llm: ScriptedLLM, batch: Batch) -> dict[str, list[RecordedCall]]:
    """card id -> the analysis calls the server saw for it, in order."""
    return {card.card_id: calls_for(llm, card) for card in batch.cards}


def call_counts(calls: dict[str, list[RecordedCall]]) -> dict[str, int]:
    return {item: len(seen) for item, seen in calls.items()}


def gaps_s(calls: list[RecordedCall]) -> list[float]:
    """Seconds from the end of each call to the start of the next: the backoff as served."""
    return [b.monotonic - (a.ended or a.monotonic) for a, b in pairwise(calls)]


def check_call_counts(counts: dict[str, int], expected: dict[str, int]) -> int:
    """Each faulted item saw exactly the calls its policy promises; each healthy one one call,
    at most one more (the only repeat DESIGN.md allows). Returns the calls beyond one per item.
    """
    for item_id, count in counts.items():
        if item_id in expected:
            assert count == expected[item_id], (item_id, count, expected[item_id])
        else:
            assert 1 <= count <= 2, (item_id, count)
    return sum(max(0, count - 1) for count in counts.values())


# --- what the client sees ------------------------------------------------------------------


Failures = dict[tuple[str, str], str]
"""(stage, item id) -> error code. An epic is an item of the epics stage and of the stories
stage (whose item is the epic's set of stories), under the same id."""


def failed_cards(cards: Iterable[Card], code: str) -> Failures:
    return {("analysis", card.card_id): code for card in cards}


def check_outcome(final: dict[str, Any], items: list[dict[str, Any]], failures: Failures) -> None:
    """The run ended ``partial`` (``succeeded`` when nothing failed) with exactly the expected
    failures in its errors list and its items, each with a code from DESIGN.md's list."""
    expected_status = "partial" if failures else "succeeded"
    assert final["status"] == expected_status, final
    assert final["finished_at"], final
    errors = {(e["stage"], e["item_id"]): e["code"] for e in final["errors"]}
    assert errors == failures, final["errors"]
    assert all(e["message"] for e in final["errors"]), final["errors"]
    for item in items:
        key = (item["stage"], item["item_id"])
        if item["state"] == "failed":
            assert item["error"]["code"] in DESIGN_ERROR_CODES, item
            assert failures.get(key) == item["error"]["code"], item
        else:
            assert item["state"] == "succeeded", item
            assert key not in failures, item
    assert final["counts"]["failed"] == len(failures)
    assert final["counts"]["succeeded"] == len(items) - len(failures)


def check_no_duplicates(client: httpx.Client, batch: Batch, items: list[dict[str, Any]]) -> int:
    """No card, epic, story, subtask or run item twice; returns how many duplicates there are
    (0, asserted) for the report."""
    cards = client.get(f"/v1/projects/{batch.project_id}/cards").json()["cards"]
    tree = client.get(f"/v1/projects/{batch.project_id}/subtasks").json()["epics"]
    epics = [e["epic"]["epic_id"] for e in tree]
    stories = [s["story"]["story_id"] for e in tree for s in e["stories"]]
    subtasks = [t["subtask_id"] for e in tree for s in e["stories"] for t in s["subtasks"]]
    run_items = [(i["stage"], i["item_id"]) for i in items]
    duplicates = 0
    for name, ids in (
        ("cards", [c["id"] for c in cards]),
        ("epics", epics),
        ("stories", stories),
        ("subtasks", subtasks),
        ("run items", run_items),
    ):
        twice = {i: n for i, n in Counter(ids).items() if n > 1}
        assert not twice, f"duplicate {name}: {twice}"
        duplicates += sum(n - 1 for n in twice.values())
    assert len(cards) == len(batch.cards)
    return duplicates


def lost_items(items: list[dict[str, Any]]) -> int:
    """Items a finished run left neither succeeded, failed nor cancelled."""
    return sum(1 for i in items if i["state"] not in ("succeeded", "failed", "cancelled"))


def report(
    *,
    fault: str,
    injected: str,
    behaviour: str,
    backend: str,
    final: dict[str, Any],
    items: list[dict[str, Any]],
    repeated: int,
    duplicates: int,
) -> None:
    record(
        FaultRow(
            fault=fault,
            injected=injected,
            behaviour=behaviour,
            backend=backend,
            run_status=final["status"],
            items=len(items),
            repeated_llm_calls=repeated,
            lost=lost_items(items),
            duplicates=duplicates,
        )
    )
