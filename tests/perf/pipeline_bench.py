"""Pipeline benchmark: makespan of one pipeline run against its ideal critical path and against
a sequential, one-call-at-a-time baseline measured in the same invocation.

    .venv/bin/python tests/perf/pipeline_bench.py [--latency 2.0] [--concurrency 3] [--cards N]

What it does (see tests/perf/README.md for what the numbers mean):

1. starts a real Kafka broker (or uses ``KAFKA_BOOTSTRAP_SERVERS``) and a scripted
   OpenAI-compatible server whose every call takes ``--latency`` seconds;
2. runs the whole pipeline once on a fresh stack (the five services as OS processes, SQLite)
   with ``CARDFLOW_WORK_CONCURRENCY=--concurrency`` and measures the makespan (run
   ``created_at`` -> ``finished_at``) and the items per stage;
3. computes the ideal makespan of that very workload (the real parent -> child mapping of the
   run) with ``ideal_makespan``, a pure list-scheduling simulation;
4. runs the same input again on a second fresh stack (new topic prefix, new databases) with
   ``CARDFLOW_WORK_CONCURRENCY=1`` and the scripted server answering strictly one call at a
   time (FIFO): the sequential baseline, measured, not computed;
5. prints a table. Exit 0 whatever the ratio; 1 only when a run did not succeed.

A script, not a pytest test: benchmarks report, they don't assert.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import functools
import heapq
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # run as a file: make `tests` importable
    sys.path.insert(0, str(REPO_ROOT))

from tests.e2e.test_pipeline import SAMPLE, start_pipeline  # noqa: E402
from tests.support import infra  # noqa: E402
from tests.support.scripted_llm import RecordedCall, Reply, ScriptedLLM  # noqa: E402
from tests.support.scripted_llm import schema_answer as answer  # noqa: E402
from tests.support.stack import SERVICES, STAGES, PipelineStack, wait_for_run  # noqa: E402

TARGET_RATIO = 1.25
Stage = Mapping[str, Sequence[str]]
"""One stage's items: item id -> ids of the previous stage's items it waits for."""


# --- the ideal ------------------------------------------------------------------------------


def ideal_schedule(
    stages: Sequence[Stage], lanes: int, latency_s: float
) -> list[dict[str, tuple[float, float]]]:
    """The ideal pipeline's schedule: per stage, item id -> (start, end) in seconds from 0.

    ``stages`` are in pipeline order; each maps an item id to the ids of the items of the
    *previous* stage it waits for (the first stage's items wait for nothing; a barrier is an
    item waiting for all of them). Each stage is served by its own pool of ``lanes`` lanes
    (a stage service at ``CARDFLOW_WORK_CONCURRENCY=lanes``); every item takes exactly
    ``latency_s`` (one LLM call) and nothing else costs time. An item is ready when the last
    item it waits for ends; a pool takes ready items in ready order (ties in the given
    order), each on the lane that frees first (greedy list scheduling). Pools depend only on
    earlier stages, so one pass per stage is exact.

    Pure: no I/O, no clock. An unknown dependency raises KeyError.
    """
    if lanes < 1:
        raise ValueError("lanes must be at least 1")
    schedule: list[dict[str, tuple[float, float]]] = []
    ends: dict[str, float] = {}
    for stage in stages:
        ready = sorted(
            (max((ends[dep] for dep in deps), default=0.0), order, item)
            for order, (item, deps) in enumerate(stage.items())
        )
        lanes_free_at = [0.0] * lanes
        times: dict[str, tuple[float, float]] = {}
        for ready_at, _, item in ready:
            start = max(ready_at, heapq.heappop(lanes_free_at))
            times[item] = (start, start + latency_s)
            heapq.heappush(lanes_free_at, start + latency_s)
        schedule.append(times)
        ends = {item: end for item, (_, end) in times.items()}
    return schedule


def ideal_makespan(stages: Sequence[Stage], lanes: int, latency_s: float) -> float:
    """The makespan of the ideal pipeline of ``ideal_schedule`` (same arguments): when its
    last item ends. Pure.

    >>> ideal_makespan([{"a": (), "b": ()}, {"e": ("a", "b")}], lanes=1, latency_s=1.0)
    3.0
    >>> ideal_makespan([{"a": (), "b": ()}, {"e": ("a", "b")}], lanes=2, latency_s=1.0)
    2.0
    """
    schedule = ideal_schedule(stages, lanes, latency_s)
    return max((end for times in schedule for _, end in times.values()), default=0.0)


# --- one call at a time ---------------------------------------------------------------------


class OneAtATime:
    """Wraps a ScriptedLLM responder so the server serves strictly one call at a time, FIFO,
    each for ``latency_s``: as the old tool did. ScriptedLLM itself is unchanged.

    The responder runs on the server's single event-loop thread, so it must not block: a
    thread holding a lock for ``latency_s`` there would also freeze the streams of the calls
    already being answered. Instead the lock guards a virtual clock: a call arriving at ``t``
    starts at ``max(t, end of the call before it)`` and its answer is stretched to end exactly
    ``latency_s`` after that start. The services really wait that long; the makespan is
    measured, not computed.
    """

    def __init__(self, responder: Callable[[RecordedCall], Reply], latency_s: float) -> None:
        self.responder = responder
        self.latency_s = latency_s
        self._lock = threading.Lock()
        self._free_at = 0.0
        self.served: list[tuple[float, float, float]] = []
        """(arrived, started, ended), monotonic seconds, one per call."""

    def __call__(self, call: RecordedCall) -> Reply:
        reply = self.responder(call)
        with self._lock:
            start = max(call.monotonic, self._free_at)
            self._free_at = start + self.latency_s
            self.served.append((call.monotonic, start, self._free_at))
        return dataclasses.replace(reply, latency_s=self._free_at - call.monotonic)

    def max_served_at_once(self) -> int:
        events = sorted([(s, 1) for _, s, _ in self.served] + [(e, -1) for _, _, e in self.served])
        peak = now = 0
        for _, step in events:
            now += step
            peak = max(peak, now)
        return peak


# --- one run --------------------------------------------------------------------------------


@dataclasses.dataclass
class RunResult:
    label: str
    concurrency: int
    status: str
    run: dict[str, Any]
    items: list[dict[str, Any]]
    stages: list[dict[str, tuple[str, ...]]]
    calls: int
    peak_in_flight: int
    workdir: Path

    @property
    def makespan(self) -> float:
        return seconds_between(self.run["created_at"], self.run["finished_at"])

    def count(self, stage: str) -> int:
        return sum(1 for i in self.items if i["stage"] == stage)

    def mean_item_s(self) -> float:
        spans = [
            seconds_between(i["started_at"], i["finished_at"])
            for i in self.items
            if i["started_at"] and i["finished_at"]
        ]
        return sum(spans) / len(spans) if spans else float("nan")


def seconds_between(start: str, end: str) -> float:
    return (dt.datetime.fromisoformat(end) - dt.datetime.fromisoformat(start)).total_seconds()


def start_cards(client: Any, count: int) -> tuple[str, dict[str, Any]]:
    """A project with ``count`` synthetic cards (``--cards``) and a pipeline run over them."""
    project = client.post("/v1/projects", json={"name": f"Bench {count} cards"}).json()
    topics = ("billing", "scheduling", "reporting", "inventory", "notifications", "access")
    cards = [
        {
            "title": f"Requirement {n}: {topics[n % len(topics)]}",
            "body": f"As a dispatcher I want {topics[n % len(topics)]} feature {n} so that "
            f"work orders are handled on time. It must log every change; it should be fast.",
        }
        for n in range(1, count + 1)
    ]
    response = client.post(f"/v1/projects/{project['id']}/cards", json={"cards": cards})
    response.raise_for_status()
    run = client.post(f"/v1/projects/{project['id']}/runs", json={"stage": "pipeline"})
    run.raise_for_status()
    return project["id"], run.json()


def workload_of(
    items: list[dict[str, Any]], story_to_epic: Mapping[str, str]
) -> list[dict[str, tuple[str, ...]]]:
    """The run's real dependency graph, in the form ``ideal_makespan`` takes."""
    ids = {stage: [i["item_id"] for i in items if i["stage"] == stage] for stage in STAGES}
    stories = set(ids["stories"])
    missing = [s for s in ids["subtasks"] if story_to_epic.get(s) not in stories]
    orphans = [e for e in ids["stories"] if e not in set(ids["epics"])]
    if missing or orphans:
        raise RuntimeError(
            f"cannot map items to parents: subtasks items {missing[:3]}, stories items "
            f"{orphans[:3]} (expected epics item id == stories item id, subtasks item id == "
            "story id)"
        )
    barrier = tuple(ids["analysis"])
    return [
        {item: () for item in ids["analysis"]},
        {item: barrier for item in ids["epics"]},
        {item: (item,) for item in ids["stories"]},
        {item: (story_to_epic[item],) for item in ids["subtasks"]},
    ]


def run_once(
    *,
    label: str,
    bootstrap: str,
    llm: ScriptedLLM,
    responder: Callable[[RecordedCall], Reply],
    concurrency: int,
    cards: int | None,
    workdir: Path,
    timeout_s: float,
) -> RunResult:
    """A fresh stack (own topic prefix, own SQLite files), one pipeline run, the stack
    stopped again. The scripted server is reset first, so its counts are this run's."""
    workdir.mkdir(parents=True)
    env = {
        "CARDFLOW_LLM_BASE_URL": llm.base_url,
        "CARDFLOW_LLM_API_KEY": "sk-test-not-a-secret",
        "CARDFLOW_LLM_MODEL": "scripted-model",
        "CARDFLOW_LLM_TIMEOUT_S": "300",
        "CARDFLOW_WORK_CONCURRENCY": str(concurrency),
    }
    urls = {name: infra.sqlite_url(workdir / f"{name}.db") for name in SERVICES}
    stack = PipelineStack(bootstrap, urls, workdir, env=env)
    print(f"[{label}] starting the five services (CARDFLOW_WORK_CONCURRENCY={concurrency})")
    try:
        stack.start()
        llm.reset(responder)
        with stack.client() as client:
            if cards is None:
                project_id, created = start_pipeline(client)
            else:
                project_id, created = start_cards(client, cards)
            print(f"[{label}] run {created['id']} started; waiting")
            snapshots = wait_for_run(
                client, created["id"], timeout_s=timeout_s, etag=f'"v{created["version"]}"'
            )
            run = snapshots[-1]
            items = client.get(f"/v1/runs/{run['id']}/items").json()["items"]
            tree = client.get(f"/v1/projects/{project_id}/stories").json()
        story_to_epic = {s["story_id"]: s["epic_id"] for e in tree["epics"] for s in e["stories"]}
        calls = len(llm.calls)
        result = RunResult(
            label=label,
            concurrency=concurrency,
            status=run["status"],
            run=run,
            items=items,
            stages=workload_of(items, story_to_epic) if run["status"] == "succeeded" else [],
            calls=calls,
            peak_in_flight=llm.max_in_flight,
            workdir=workdir,
        )
        print(f"[{label}] {run['status']} in {result.makespan:.1f} s, {calls} LLM calls")
        if run["status"] != "succeeded":
            print(f"[{label}] errors: {run.get('errors')}\n{stack.logs()}", file=sys.stderr)
        return result
    finally:
        bad = stack.unclean_exits(stack.stop())
        if bad:
            print(f"[{label}] warning: services did not stop cleanly: {bad}", file=sys.stderr)


# --- report ---------------------------------------------------------------------------------


def report(
    concurrent: RunResult, sequential: RunResult, serial: OneAtATime, latency_s: float
) -> str:
    c = concurrent.concurrency
    ideal = ideal_makespan(concurrent.stages, c, latency_s)
    ideal_seq = sequential.calls * latency_s  # one call at a time: nothing can overlap
    items_c, items_s = len(concurrent.items), len(sequential.items)
    ratio = concurrent.makespan / ideal
    verdict = "meets" if ratio <= TARGET_RATIO else "MISSES"
    waited = sum(start - arrived for arrived, start, _ in serial.served)
    rows: list[tuple[str, str, str]] = [
        *(
            (f"items: {stage}", str(concurrent.count(stage)), str(sequential.count(stage)))
            for stage in STAGES
        ),
        ("items: total", str(items_c), str(items_s)),
        (
            "LLM calls (server / run usage)",
            f"{concurrent.calls} / {concurrent.run['usage']['llm_calls']}",
            f"{sequential.calls} / {sequential.run['usage']['llm_calls']}",
        ),
        (
            "LLM calls served at once, peak",
            str(concurrent.peak_in_flight),
            f"{serial.max_served_at_once()} (FIFO; {waited:.1f} s queued in all)",
        ),
        (
            "makespan (run created -> finished)",
            f"{concurrent.makespan:.1f} s",
            f"{sequential.makespan:.1f} s",
        ),
        (
            "ideal critical path",
            f"{ideal:.1f} s (simulated, {c} lanes/stage)",
            f"{ideal_seq:.1f} s (calls x L)",
        ),
        (
            f"ratio makespan / ideal (target <= {TARGET_RATIO})",
            f"{ratio:.2f} ({verdict} the target)",
            f"{sequential.makespan / ideal_seq:.2f}",
        ),
        (
            "overhead per item (makespan - ideal) / items",
            f"{(concurrent.makespan - ideal) / items_c:.2f} s",
            f"{(sequential.makespan - ideal_seq) / items_s:.2f} s",
        ),
        (
            "mean item time (started -> finished)",
            f"{concurrent.mean_item_s():.2f} s",
            f"{sequential.mean_item_s():.2f} s (includes queueing)",
        ),
        (
            "speed-up = sequential / concurrent",
            f"{sequential.makespan / concurrent.makespan:.2f}x measured",
            f"{ideal_seq / ideal:.2f}x ideal",
        ),
    ]
    head = (
        "metric",
        f"concurrent (c={c})",
        "sequential (c=1, one LLM call at a time)",
    )
    return _table(head, rows)


def timeline(result: RunResult, latency_s: float) -> str:
    """Per stage, when its first item started and its last ended (seconds after the run was
    created), measured and ideal: where the time between the two makespans went."""
    schedule = ideal_schedule(result.stages, result.concurrency, latency_s)
    created = result.run["created_at"]
    head = ("stage", "measured: first start .. last end", "ideal: first start .. last end")
    rows = []
    for stage, times in zip(STAGES, schedule, strict=True):
        mine = [i for i in result.items if i["stage"] == stage]
        starts = [seconds_between(created, i["started_at"]) for i in mine if i["started_at"]]
        ends = [seconds_between(created, i["finished_at"]) for i in mine if i["finished_at"]]
        rows.append(
            (
                stage,
                f"{min(starts):6.1f} .. {max(ends):6.1f} s" if starts and ends else "-",
                f"{min(s for s, _ in times.values()):6.1f} .. "
                f"{max(e for _, e in times.values()):6.1f} s",
            )
        )
    return _table(head, rows)


def _table(head: tuple[str, str, str], rows: Sequence[tuple[str, str, str]]) -> str:
    widths = [max(len(r[k]) for r in [head, *rows]) for k in range(3)]
    lines = [" | ".join(cell.ljust(w) for cell, w in zip(head, widths, strict=True))]
    lines.append("-+-".join("-" * w for w in widths))
    lines += [" | ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


# --- main -----------------------------------------------------------------------------------


@contextlib.contextmanager
def workspace(keep: bool) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="cardflow-bench-"))
    ok = False
    try:
        yield path
        ok = True
    finally:
        if ok and not keep:
            shutil.rmtree(path, ignore_errors=True)
        else:
            print(f"logs and databases kept in {path}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=float, default=2.0, help="seconds per LLM call")
    parser.add_argument(
        "--concurrency", type=int, default=3, help="CARDFLOW_WORK_CONCURRENCY of the fast run"
    )
    parser.add_argument(
        "--cards",
        type=int,
        default=None,
        help=f"N synthetic cards instead of uploading {SAMPLE.relative_to(REPO_ROOT)}",
    )
    parser.add_argument("--timeout", type=float, default=900, help="seconds per run at most")
    parser.add_argument("--keep", action="store_true", help="keep logs and databases")
    parser.add_argument(
        "--no-warmup", action="store_true", help="measure on a cold broker (first run)"
    )
    args = parser.parse_args(argv)
    if args.latency <= 0 or args.concurrency < 1 or (args.cards is not None and args.cards < 1):
        parser.error("--latency > 0, --concurrency >= 1 and --cards >= 1, please")

    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    source = SAMPLE.relative_to(REPO_ROOT) if args.cards is None else f"{args.cards} cards"
    print(
        f"pipeline bench {when}: {source}, L={args.latency:g} s per call, "
        f"c={args.concurrency}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}"
    )
    with workspace(args.keep) as root, contextlib.ExitStack() as resources:
        bootstrap = resources.enter_context(infra.kafka_broker(root / "kafka"))
        for record in infra.PROVISIONED:
            print(record.line())
        llm = resources.enter_context(ScriptedLLM(answer, latency_s=args.latency))
        run = functools.partial(
            run_once, bootstrap=bootstrap, llm=llm, cards=args.cards, timeout_s=args.timeout
        )
        if not args.no_warmup:
            # A fresh broker creates its internal topics (__consumer_offsets, the transaction
            # log) and elects their leaders during the first stack's start: measured, that
            # first run was several times slower. Production brokers are warm, so warm it.
            warm = functools.partial(
                run_once, bootstrap=bootstrap, llm=llm, cards=2, timeout_s=args.timeout
            )
            warmup = warm(
                label="warm-up",
                responder=answer,
                concurrency=args.concurrency,
                workdir=root / "warmup",
            )
            print(f"[warm-up] {warmup.status} (not measured)")
        concurrent = run(
            label="concurrent",
            responder=answer,
            concurrency=args.concurrency,
            workdir=root / "concurrent",
        )
        serial = OneAtATime(answer, args.latency)
        sequential = run(
            label="sequential", responder=serial, concurrency=1, workdir=root / "sequential"
        )
        failed = [r.label for r in (concurrent, sequential) if r.status != "succeeded"]
        if failed:
            print(f"run(s) did not succeed: {', '.join(failed)}", file=sys.stderr)
            raise SystemExit(1)
        print()
        print(report(concurrent, sequential, serial, args.latency))
        print(f"\ntimeline of the concurrent run (c={args.concurrency})")
        print(timeline(concurrent, args.latency))
        print(
            "\nsequential baseline: measured, the scripted server serving one call at a time "
            "(FIFO) with every service at concurrency 1."
        )
        print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
