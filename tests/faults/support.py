"""Shared helpers of the fault-injection tests: the document a faulted run works on, a
deterministic scripted LLM whose calls can be counted per item, following a run through the
API, and the checks every case makes on its outcome (terminal, no duplicates, known error
codes, nothing lost, at most one repeated LLM call per item hit)."""

from __future__ import annotations

import json
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.scripted_llm import RecordedCall, Reply, ScriptedLLM, content, valid_instance
from tests.support.stack import STAGES
from tests.support.wait import until_sync

# DESIGN.md, "Error codes (the only ones a client sees)": copied from the design, not
# imported from contracts, so a code added there without the design fails here.
DESIGN_ERROR_CODES = frozenset(
    {
        "llm_timeout",
        "llm_rate_limited",
        "llm_invalid_output",
        "llm_refused",
        "llm_context_overflow",
        "llm_unavailable",
        "budget_exceeded",
        "cancelled",
        "input_invalid",
        "internal",
    }
)
TERMINAL = frozenset({"succeeded", "partial", "failed", "cancelled"})
RUN_TIMEOUT_S = 240.0

# --- the document ----------------------------------------------------------------------------

_SECTIONS: tuple[tuple[str, str], ...] = (
    ("Work order intake", "Dispatchers create a work order in under a minute."),
    ("Technician scheduling board", "Dispatchers plan the day on a board, one lane each."),
    ("Skills and certifications", "Some equipment needs certified technicians."),
    ("Mobile app for technicians", "Technicians see the jobs of the day on their phone."),
    ("Customer notifications", "Customers get a message when a technician is on the way."),
    ("Parts and van stock", "Each van carries parts; stock is counted after every job."),
    ("Invoicing", "A completed job becomes an invoice the same day."),
    ("Maintenance contracts", "Yearly maintenance visits are planned from contracts."),
    ("Reporting for managers", "Managers see first-time fix rate and travel time per week."),
    ("Access and roles", "Dispatchers, technicians and managers see different screens."),
    ("Data import", "Customers and equipment are imported from the old spreadsheet."),
    ("Audit trail", "Every change to a work order is recorded with who and when."),
)


def new_nonce() -> str:
    """Digits only: the epics stage groups cards by shared words, and a nonce made of letters
    could become one; a number never does. Makes every document's text (and so every LLM
    prompt and cache key) new, so no run is served from another run's cached results."""
    return str(uuid.uuid4().int % 10**12).zfill(12)


def document(nonce: str, cards: int = 12) -> bytes:
    """A Markdown document of ``cards`` sections (each becomes a card), at least ten."""
    assert 10 <= cards <= len(_SECTIONS)
    parts = [f"# Field service, release {nonce}\n"]
    for number, (title, intro) in enumerate(_SECTIONS[:cards], start=1):
        parts.append(
            f"## {title}\n\n{intro} Reference {nonce}-{number:02d}.\n\n"
            # The nonce in a requirement too: the reader keeps the intro as context, and the
            # epics' and stories' prompts (and cache keys) are made of the requirements.
            f"- The system must keep {title.lower()} consistent for every site "
            f"(reference {nonce}-{number:02d}).\n"
            f"- Changes to {title.lower()} should be visible within 5 seconds.\n"
        )
    return "\n".join(parts).encode()


# --- the scripted LLM --------------------------------------------------------------------------


def user_text(call: RecordedCall) -> str:
    return "\n".join(str(m.get("content") or "") for m in call.messages if m.get("role") == "user")


# How long the calls of a stage a fault targets take while they are held: the run's view
# shows the stage's items running, however late on a loaded machine, while their calls are
# still mid-answer. Released once the fault is in, so the rest of the run goes at speed.
HOLD_S = 15.0


@dataclass
class FaultScript:
    """Valid answers that depend only on the request (a repeated call gets the same answer,
    as a cache or a deterministic model would give), at the server's latency unless a
    ``slow`` marker is in the prompt or the call's stage is held."""

    slow: dict[str, float] = field(default_factory=dict)
    """Substring of the user prompt -> latency of that call, seconds."""
    held: dict[str, float] = field(default_factory=dict)
    """Stage -> latency of the calls it starts until ``release()``."""

    def hold(self, stage: str, seconds: float = HOLD_S) -> FaultScript:
        self.held[stage] = seconds
        return self

    def release(self) -> None:
        """Calls from now on answer at the normal pace (calls already made keep theirs)."""
        self.held.clear()

    def __call__(self, call: RecordedCall) -> Reply:
        assert call.schema is not None, "every stage asks for structured output"
        seed = zlib.crc32(json.dumps(call.messages, sort_keys=True).encode())
        answer = valid_instance(call.schema, seed=seed)
        prompt = user_text(call)
        latency = next((s for marker, s in self.slow.items() if marker in prompt), None)
        if latency is None:
            latency = self.held.get(call_stage(call))
        return content(json.dumps(answer), latency_s=latency)


def fault_llm_env(llm: ScriptedLLM, **extra: str) -> dict[str, str]:
    """Environment for every service of a fault stack: the scripted LLM, and leases short
    enough that a killed replica's items are claimed again within seconds, not 30."""
    return {
        "CARDFLOW_LLM_BASE_URL": llm.base_url,
        "CARDFLOW_LLM_API_KEY": "sk-test-not-a-secret",
        "CARDFLOW_LLM_MODEL": "scripted-model",
        "CARDFLOW_LLM_TIMEOUT_S": "60",
        "CARDFLOW_WORK_LEASE_S": "5",
        **extra,
    }


_SCHEMA_STAGES = {"AnalysisDraft": "analysis", "EpicDraft": "epics", "EpicGrouping": "epics"}
_SCHEMA_STAGES |= {"StoriesDraft": "stories", "SubtasksDraft": "subtasks"}


def call_stage(call: RecordedCall) -> str:
    name = ((call.response_format or {}).get("json_schema") or {}).get("name", "")
    return _SCHEMA_STAGES.get(str(name), str(name))


def call_key(call: RecordedCall) -> tuple[str, str]:
    """Which item a call was for: its stage and its prompt (an item's prompt is the same at
    every attempt and differs from every other item's, ids and text being in it)."""
    return call_stage(call), user_text(call)


@dataclass(frozen=True)
class CallCount:
    calls: int
    items: int
    repeated: int
    """Calls beyond the first for their item."""
    most_for_one_item: int
    by_stage: dict[str, int]
    repeated_items: frozenset[tuple[str, str]]
    """``call_key`` of every item called more than once."""


def count_calls(calls: Iterable[RecordedCall]) -> CallCount:
    per_item = Counter(call_key(c) for c in calls)
    by_stage = Counter(stage for stage, _ in per_item.elements())
    return CallCount(
        calls=sum(per_item.values()),
        items=len(per_item),
        repeated=sum(n - 1 for n in per_item.values()),
        most_for_one_item=max(per_item.values(), default=0),
        by_stage=dict(by_stage),
        repeated_items=frozenset(k for k, n in per_item.items() if n > 1),
    )


class CallWindow:
    """The LLM calls made from now on (a module's tests share one server, one at a time)."""

    def __init__(self, llm: ScriptedLLM) -> None:
        self.llm = llm
        self.start = len(llm.calls)

    @property
    def calls(self) -> list[RecordedCall]:
        return self.llm.calls[self.start :]

    def count(self) -> CallCount:
        return count_calls(self.calls)

    def in_flight(self, stage: str) -> list[RecordedCall]:
        """Calls of ``stage`` not answered yet and in the first half of their answer (each
        lasts its scripted latency): a kill now interrupts them rather than racing their end."""
        now = time.monotonic()
        return [
            c
            for c in self.calls
            if call_stage(c) == stage
            and c.ended is None
            and now - c.monotonic < self._latency(c) / 2
        ]

    def cut_short(self, stage: str, at: float) -> list[RecordedCall]:
        """Calls of ``stage`` open at ``at`` (``time.monotonic()`` of a kill) that ended before
        their answer was done: the calls the fault hit. Ask once they have all ended (after
        the run): a survivor's call open at ``at`` ends when its answer does, and is not
        counted."""
        return [
            c
            for c in self.calls
            if call_stage(c) == stage
            and c.monotonic < at
            and c.ended is not None
            and c.ended >= at
            and c.ended - c.monotonic < self._latency(c) - 0.25
        ]

    def _latency(self, call: RecordedCall) -> float:
        return self.llm.latency_s if call.reply.latency_s is None else call.reply.latency_s

    def wait_for(self, more: int, timeout: float = 60.0) -> None:
        """Until ``more`` calls were made in the window (progress made, e.g. during a fault)."""
        self.llm.wait_for_calls(self.start + more, timeout=timeout)


# --- driving a run -----------------------------------------------------------------------------


def start_document_run(client: httpx.Client, name: str, nonce: str | None = None) -> Started:
    """A new project, the document uploaded, a pipeline run started."""
    nonce = nonce or new_nonce()
    project = client.post("/v1/projects", json={"name": name})
    assert project.status_code == 201, project.text
    project_id = project.json()["id"]
    upload = client.post(
        f"/v1/projects/{project_id}/uploads",
        files={"file": (f"{name}.md", document(nonce), "text/markdown")},
    )
    assert upload.status_code == 202, upload.text
    assert len(upload.json()["cards"]) >= 10
    response = client.post(f"/v1/projects/{project_id}/runs", json={"stage": "pipeline"})
    assert response.status_code == 202, response.text
    return Started(project_id, response.json(), nonce)


@dataclass(frozen=True)
class Started:
    project_id: str
    run: dict[str, Any]
    nonce: str

    @property
    def run_id(self) -> str:
        return str(self.run["id"])


def snapshots(
    client: httpx.Client, run_id: str, timeout: float = RUN_TIMEOUT_S
) -> Iterator[dict[str, Any]]:
    """Each new version of the run as a client sees it (ETag long-poll), until ``timeout``."""
    etag: str | None = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        headers = {"If-None-Match": etag} if etag else {}
        response = client.get(f"/v1/runs/{run_id}", params={"wait": 2}, headers=headers)
        if response.status_code == 304:
            continue
        response.raise_for_status()
        etag = response.headers["ETag"]
        yield response.json()
    raise AssertionError(f"run {run_id}: not done waiting after {timeout}s")


def wait_run(
    client: httpx.Client,
    run_id: str,
    condition: Callable[[dict[str, Any]], bool],
    what: str,
    timeout: float = RUN_TIMEOUT_S,
) -> dict[str, Any]:
    """The first version of the run that meets ``condition``; fails if it ends first."""
    for run in snapshots(client, run_id, timeout):
        if condition(run):
            return run
        if run["status"] in TERMINAL:
            raise AssertionError(f"run ended before {what}: {run}")
    raise AssertionError(f"run {run_id}: no {what} in {timeout}s")


def in_flight(run: dict[str, Any], stage: str) -> list[dict[str, Any]]:
    return [i for i in run["in_progress"] if i.get("stage") == stage]


def wait_in_flight(
    client: httpx.Client, run_id: str, stage: str, at_least: int = 1
) -> list[dict[str, Any]]:
    """Until the run shows ``at_least`` items of ``stage`` in progress; those items."""
    run = wait_run(
        client,
        run_id,
        lambda r: len(in_flight(r, stage)) >= at_least,
        f"{at_least} {stage} item(s) in flight",
    )
    return in_flight(run, stage)


def wait_stage_hit(
    client: httpx.Client, run_id: str, window: CallWindow, stage: str, at_least: int = 1
) -> tuple[list[dict[str, Any]], list[RecordedCall]]:
    """Until the run shows ``at_least`` items of ``stage`` in progress while the LLM server
    has calls of that stage mid-answer: the moment to hit the stage (an item shown running
    may be between claim and call, and the run's view may lag behind the services on a
    loaded machine, so neither alone will do). Those items and those calls."""

    def both() -> tuple[list[dict[str, Any]], list[RecordedCall]] | None:
        run = client.get(f"/v1/runs/{run_id}").json()
        if run["status"] in TERMINAL:
            raise AssertionError(f"run ended before {stage} could be hit: {run}")
        shown, calls = in_flight(run, stage), window.in_flight(stage)
        return (shown, calls) if len(shown) >= at_least and calls else None

    return until_sync(both, timeout=RUN_TIMEOUT_S, what=f"{stage} items running, mid-call")


def wait_terminal(
    client: httpx.Client, run_id: str, timeout: float = RUN_TIMEOUT_S
) -> dict[str, Any]:
    return wait_run(client, run_id, lambda r: r["status"] in TERMINAL, "the end", timeout)


# --- what a run left behind ----------------------------------------------------------------------


@dataclass(frozen=True)
class Backlog:
    cards: list[dict[str, Any]]
    epics: list[dict[str, Any]]
    stories: list[dict[str, Any]]
    subtasks: list[dict[str, Any]]

    def counts(self) -> dict[str, int]:
        return {
            "cards": len(self.cards),
            "epics": len(self.epics),
            "stories": len(self.stories),
            "subtasks": len(self.subtasks),
        }


def read_backlog(client: httpx.Client, project_id: str) -> Backlog:
    cards = client.get(f"/v1/projects/{project_id}/cards").json()["cards"]
    tree = client.get(f"/v1/projects/{project_id}/subtasks").json()["epics"]
    return Backlog(
        cards=cards,
        epics=[e["epic"] for e in tree],
        stories=[s["story"] for e in tree for s in e["stories"]],
        subtasks=[t for e in tree for s in e["stories"] for t in s["subtasks"]],
    )


def _repeats(values: Iterable[Any]) -> list[Any]:
    return [v for v, n in Counter(values).items() if n > 1]


def duplicates(backlog: Backlog) -> list[str]:
    """What is there twice: ids anywhere; per parent, positions (and titles where the
    generator makes them distinct: cards from distinct sections, one answer's stories or
    subtasks). Epic titles are not compared: the scripted answers name every epic alike."""
    found: list[str] = []

    def check(what: str, values: Iterable[Any]) -> None:
        found.extend(f"{what}: {v!r}" for v in _repeats(values))

    check("card id", (c["id"] for c in backlog.cards))
    check("card position", (c["position"] for c in backlog.cards))
    check("card title", (c["title"] for c in backlog.cards))
    check("epic id", (e["epic_id"] for e in backlog.epics))
    check("epic order", (e["order"] for e in backlog.epics))
    check("story id", (s["story_id"] for s in backlog.stories))
    check("story order in epic", ((s["epic_id"], s["order"]) for s in backlog.stories))
    check("story title in epic", ((s["epic_id"], s["title"]) for s in backlog.stories))
    check("subtask id", (t["subtask_id"] for t in backlog.subtasks))
    check("subtask order in story", ((t["story_id"], t["order"]) for t in backlog.subtasks))
    check("subtask title in story", ((t["story_id"], t["title"]) for t in backlog.subtasks))
    return found


def orphans(backlog: Backlog) -> list[str]:
    epic_ids = {e["epic_id"] for e in backlog.epics}
    story_ids = {s["story_id"] for s in backlog.stories}
    return [f"story {s['story_id']}" for s in backlog.stories if s["epic_id"] not in epic_ids] + [
        f"subtask {t['subtask_id']}" for t in backlog.subtasks if t["story_id"] not in story_ids
    ]


def unfinished(backlog: Backlog) -> list[str]:
    """Work a pipeline should have done and did not: a card not analysed, an epic without
    stories, a story without subtasks (each is a lost item)."""
    parents_of_stories = {s["epic_id"] for s in backlog.stories}
    parents_of_subtasks = {t["story_id"] for t in backlog.subtasks}
    return (
        [f"card {c['id']} {c['analysis_status']}" for c in backlog.cards if not c["analysis"]]
        + [f"epic {e['epic_id']}" for e in backlog.epics if e["epic_id"] not in parents_of_stories]
        + [
            f"story {s['story_id']}"
            for s in backlog.stories
            if s["story_id"] not in parents_of_subtasks
        ]
    )


def bad_error_codes(client: httpx.Client, run: dict[str, Any]) -> list[str]:
    """Failed items whose error code is not one of DESIGN.md's, from the run and its items."""
    items = client.get(f"/v1/runs/{run['id']}/items").json()["items"]
    codes = [e["code"] for e in run["errors"]]
    codes += [i["error"]["code"] if i["error"] else None for i in items if i["state"] == "failed"]
    return [str(c) for c in codes if c not in DESIGN_ERROR_CODES]


def run_vs_backlog(run: dict[str, Any], backlog: Backlog, planning: int = 0) -> list[str]:
    """Where the run object's counts disagree with what the backlog shows (pipeline: one
    analysis item per card, one epics item per epic and ``planning`` more (the grouping by
    the LLM), one stories item per epic, one subtasks item per story)."""
    stages = run["stages"]
    expected = {
        "analysis": len(backlog.cards),
        "epics": len(backlog.epics) + planning,
        "stories": len(backlog.epics),
        "subtasks": len(backlog.stories),
    }
    wrong = [
        f"{stage}: {stages[stage]['succeeded']} succeeded, backlog says {want}"
        for stage, want in expected.items()
        if stages[stage]["succeeded"] + stages[stage]["failed"] != want
    ]
    counts = run["counts"]
    parts = ("pending", "running", "succeeded", "failed", "cancelled")
    if sum(counts[p] for p in parts) != counts["total"]:
        wrong.append(f"counts do not add up: {counts}")
    for part in ("total", *parts):
        if counts[part] != sum(stages[s][part] for s in STAGES):
            wrong.append(f"counts.{part} is not the sum of the stages: {run['stages']}")
    return wrong


@dataclass(frozen=True)
class Outcome:
    """What a faulted run left, checked the same way for every case."""

    run: dict[str, Any]
    backlog: Backlog
    calls: CallCount
    lost: int
    duplicates: list[str]

    @property
    def items(self) -> int:
        return int(self.run["counts"]["total"])


@dataclass(frozen=True)
class Baseline:
    """What a clean run of the document gives (the scripted answers are deterministic, so a
    faulted run must give the same counts)."""

    backlog: dict[str, int]
    items: int
    llm_items: int


def outcome(
    client: httpx.Client,
    run: dict[str, Any],
    project_id: str,
    calls: CallCount,
    baseline: Baseline | None = None,
) -> Outcome:
    """Checks a terminal run: counts add up and match the backlog, no duplicates or
    orphans, DESIGN.md error codes only; lost = items never finished, work not done
    (``unfinished``) and what a clean run has and this one lacks."""
    assert run["status"] in TERMINAL, run
    backlog = read_backlog(client, project_id)
    dups = duplicates(backlog)
    assert not dups, f"duplicates: {dups}"
    assert not orphans(backlog), orphans(backlog)
    items = client.get(f"/v1/runs/{run['id']}/items").json()["items"]
    planning = sum(i["planning"] for i in items)
    assert not (wrong := run_vs_backlog(run, backlog, planning)), wrong
    assert not (bad := bad_error_codes(client, run)), f"error codes not in DESIGN.md: {bad}"
    counts = backlog.counts()
    lost = run["counts"]["pending"] + run["counts"]["running"] + len(unfinished(backlog))
    if baseline is not None:
        lost += sum(max(0, want - counts[k]) for k, want in baseline.backlog.items())
        lost += max(0, baseline.items - run["counts"]["total"])
    return Outcome(run, backlog, calls, lost, dups)


def as_baseline(done: Outcome) -> Baseline:
    return Baseline(done.backlog.counts(), done.items, done.calls.items)
