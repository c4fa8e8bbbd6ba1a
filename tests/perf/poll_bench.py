"""Poll benchmark: what 10, 100 and 1,000 long-pollers of one run cost the gateway.

    .venv/bin/python tests/perf/poll_bench.py [--pollers 10,100,1000] [--seconds 12]

What it does (tests/perf/README.md says what the numbers mean):

1. starts a real Kafka broker, a scripted OpenAI-compatible server whose every call takes
   ``--latency`` seconds (so a pipeline run stays live for minutes) and the five services as
   OS processes (SQLite), one gateway process;
2. starts a pipeline run over ``--cards`` synthetic cards;
3. measures a baseline with no pollers: a probe making a conditional GET of the run
   (``If-None-Match`` its current ETag, no wait) and a ``GET /healthz``, each every 20 ms;
4. for each count of pollers: that many long-pollers (``?wait=25`` with ``If-None-Match``,
   each on its own keep-alive connection, re-polling at once after each answer) are connected
   and settled, then for ``--seconds`` the probe runs beside them; the gateway's SQL statements
   are read from its ``/metrics`` (``cardflow_db_statements_total``, counted from the
   engine's events) before and after;
5. waits for the run to finish and does 3-4 again on the finished run;
6. prints a table: probe p50/p99 of each request, errors, answers to the pollers per second,
   versions per second, database reads and writes per second, and the probe's p99 as a ratio
   to the baseline measured in the same invocation. Exit 0 whatever the numbers; 1 only when
   the run did not finish.

The pollers and the probe use a minimal HTTP/1.1 client on raw asyncio streams (this process
holds a thousand connections on the same two cores as the gateway; httpx would measure itself).
A script, not a pytest test: benchmarks report, they don't assert.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import os
import re
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # run as a file: make `tests` importable
    sys.path.insert(0, str(REPO_ROOT))

from tests.perf.pipeline_bench import start_cards, workspace  # noqa: E402
from tests.support import infra  # noqa: E402
from tests.support.scripted_llm import ScriptedLLM  # noqa: E402
from tests.support.scripted_llm import schema_answer as answer  # noqa: E402
from tests.support.stack import API_KEY, SERVICES, PipelineStack  # noqa: E402

PROBE_EVERY_S = 0.02
WAIT_S = 25
_STATEMENTS = re.compile(r'^cardflow_db_statements_total\{kind="(read|write)"\} (\S+)$', re.M)


# --- a minimal HTTP/1.1 client --------------------------------------------------------------


class Connection:
    """One keep-alive HTTP/1.1 connection: a request at a time, answers read by length."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def get(self, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        lines = [f"GET {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await self._writer.drain()
        status_line = await self._reader.readline()
        if not status_line:
            raise ConnectionError("closed by the server")
        status = int(status_line.split()[1])
        answer_headers: dict[str, str] = {}
        while (line := await self._reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            answer_headers[name.strip().lower()] = value.strip()
        length = int(answer_headers.get("content-length", "0"))
        body = await self._reader.readexactly(length) if length else b""
        return status, answer_headers, body

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


AUTH = {"Authorization": f"Bearer {API_KEY}"}


@dataclasses.dataclass
class Tally:
    answers: int = 0
    errors: int = 0
    samples: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    error_kinds: dict[str, int] = dataclasses.field(default_factory=dict)
    expected: int = 0
    connected: int = 0
    all_connected: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)

    def connect(self) -> None:
        self.connected += 1
        if self.connected >= self.expected:
            self.all_connected.set()

    def error(self, what: str) -> None:
        self.errors += 1
        self.error_kinds[what] = self.error_kinds.get(what, 0) + 1


async def poller(host: str, port: int, run_id: str, tally: Tally) -> None:
    connection = Connection(host, port)
    etag: str | None = None
    first = True
    try:
        while True:
            headers = dict(AUTH)
            if etag:
                headers["If-None-Match"] = etag
            path = f"/v1/runs/{run_id}" + ("" if first else f"?wait={WAIT_S}")
            try:
                status, answer_headers, _ = await connection.get(path, headers)
            except (ConnectionError, OSError, asyncio.IncompleteReadError) as error:
                tally.error(type(error).__name__)
                connection.close()
                await asyncio.sleep(0.5)
                continue
            if first:
                tally.connect()
                first = False
            if status in (200, 304):
                tally.answers += 1
                etag = answer_headers.get("etag", etag)
            else:
                tally.error(f"HTTP {status}")
                await asyncio.sleep(float(answer_headers.get("retry-after", "1")))
    finally:
        connection.close()


async def probe(host: str, port: int, run_id: str, tally: Tally, until: float) -> None:
    """Conditional GETs of the run and /healthz, alternately, each every PROBE_EVERY_S."""
    run_connection, health_connection = Connection(host, port), Connection(host, port)
    status, headers, _ = await run_connection.get(f"/v1/runs/{run_id}", AUTH)
    etag = headers.get("etag", "")
    try:
        while time.monotonic() < until:
            for name, connection, path, extra in (
                ("conditional GET", run_connection, f"/v1/runs/{run_id}", {"If-None-Match": etag}),
                ("/healthz", health_connection, "/healthz", {}),
            ):
                started = time.perf_counter()
                try:
                    status, headers, _ = await connection.get(path, AUTH | extra)
                except (ConnectionError, OSError, asyncio.IncompleteReadError) as error:
                    tally.error(f"probe {type(error).__name__}")
                    connection.close()
                    continue
                tally.samples.setdefault(name, []).append(time.perf_counter() - started)
                if status not in (200, 304):
                    tally.error(f"probe HTTP {status}")
                etag = headers.get("etag", etag) if name == "conditional GET" else etag
            await asyncio.sleep(PROBE_EVERY_S)
    finally:
        run_connection.close()
        health_connection.close()


# --- the gateway's counters -----------------------------------------------------------------


async def statements(host: str, port: int) -> dict[str, float]:
    connection = Connection(host, port)
    try:
        _, _, body = await connection.get("/metrics", {})
    finally:
        connection.close()
    return {kind: float(value) for kind, value in _STATEMENTS.findall(body.decode())}


async def run_state(host: str, port: int, run_id: str) -> tuple[str, int]:
    connection = Connection(host, port)
    try:
        _, _, body = await connection.get(f"/v1/runs/{run_id}", AUTH)
    finally:
        connection.close()
    run = json.loads(body)
    return str(run["status"]), int(run["version"])


# --- one measured phase ---------------------------------------------------------------------


@dataclasses.dataclass
class Phase:
    run: str
    pollers: int
    seconds: float
    tally: Tally
    reads_per_s: float
    writes_per_s: float
    versions_per_s: float
    status_after: str

    def p(self, name: str, q: float) -> float:
        values = sorted(self.tally.samples.get(name, []))
        if not values:
            return float("nan")
        if q == 50:
            return statistics.median(values) * 1000
        return values[min(len(values) - 1, int(len(values) * q / 100))] * 1000


async def measure(
    host: str, port: int, run_id: str, label: str, pollers: int, seconds: float
) -> Phase:
    tally = Tally(expected=pollers)
    tasks = [asyncio.create_task(poller(host, port, run_id, tally)) for _ in range(pollers)]
    if pollers:
        await asyncio.wait_for(tally.all_connected.wait(), 120)
    await asyncio.sleep(2.0)  # the pollers' first answers and re-polls settle
    answers_before, errors_before = tally.answers, tally.errors
    tally.error_kinds.clear()
    before, (_, version_before) = await statements(host, port), await run_state(host, port, run_id)
    started = time.monotonic()
    await probe(host, port, run_id, tally, started + seconds)
    elapsed = time.monotonic() - started
    after, (status, version_after) = (
        await statements(host, port),
        await run_state(host, port, run_id),
    )
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    tally.answers -= answers_before
    tally.errors -= errors_before
    return Phase(
        run=label,
        pollers=pollers,
        seconds=elapsed,
        tally=tally,
        reads_per_s=(after.get("read", 0) - before.get("read", 0)) / elapsed,
        writes_per_s=(after.get("write", 0) - before.get("write", 0)) / elapsed,
        versions_per_s=(version_after - version_before) / elapsed,
        status_after=status,
    )


def report(phases: Sequence[Phase]) -> str:
    baselines = {p.run: p for p in phases if p.pollers == 0}
    rows = [
        "| run | pollers | cond. GET p50 / p99 ms | /healthz p50 / p99 ms | p99 vs baseline "
        "(GET, healthz) | errors | answers/s | versions/s | DB reads/s | DB writes/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in phases:
        base = baselines[p.run]
        ratio_get = p.p("conditional GET", 99) / base.p("conditional GET", 99)
        ratio_health = p.p("/healthz", 99) / base.p("/healthz", 99)
        rows.append(
            f"| {p.run} | {p.pollers} | {p.p('conditional GET', 50):.1f} / "
            f"{p.p('conditional GET', 99):.1f} | {p.p('/healthz', 50):.1f} / "
            f"{p.p('/healthz', 99):.1f} | {ratio_get:.2f}x, {ratio_health:.2f}x | "
            f"{p.tally.errors} | {p.tally.answers / p.seconds:.0f} | {p.versions_per_s:.1f} | "
            f"{p.reads_per_s:.1f} | {p.writes_per_s:.1f} |"
        )
    kinds = {k: v for p in phases for k, v in p.tally.error_kinds.items()}
    if kinds:
        rows.append(f"\nerrors by kind: {kinds}")
    return "\n".join(rows)


async def bench(
    url: str, run_id: str, counts: Sequence[int], seconds: float, finish_timeout_s: float
) -> list[Phase]:
    host, port = url.removeprefix("http://").split(":")
    phases: list[Phase] = []
    for label in ("live", "finished"):
        if label == "finished":
            deadline = time.monotonic() + finish_timeout_s
            while (await run_state(host, int(port), run_id))[0] in ("queued", "running"):
                if time.monotonic() > deadline:
                    raise SystemExit(f"the run did not finish in {finish_timeout_s:.0f} s")
                await asyncio.sleep(1)
        for pollers in (0, *counts):
            phase = await measure(host, int(port), run_id, label, pollers, seconds)
            print(
                f"[{label}] {pollers} pollers: GET p99 {phase.p('conditional GET', 99):.1f} ms,"
                f" healthz p99 {phase.p('/healthz', 99):.1f} ms, errors {phase.tally.errors},"
                f" reads/s {phase.reads_per_s:.1f}, run {phase.status_after}",
                flush=True,
            )
            phases.append(phase)
    return phases


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pollers", default="10,100,1000", help="counts of long-pollers")
    parser.add_argument("--seconds", type=float, default=12, help="seconds measured per phase")
    parser.add_argument("--cards", type=int, default=120, help="cards of the pipeline run")
    parser.add_argument("--latency", type=float, default=1.5, help="seconds per LLM call")
    parser.add_argument("--timeout", type=float, default=1200, help="seconds for the run")
    parser.add_argument("--keep", action="store_true", help="keep logs and databases")
    args = parser.parse_args(argv)
    counts = [int(c) for c in args.pollers.split(",")]

    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(
        f"poll bench {when}: pollers {counts}, {args.seconds:g} s per phase, {args.cards} cards, "
        f"L={args.latency:g} s per call, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}"
    )
    with workspace(args.keep) as root, contextlib.ExitStack() as resources:
        bootstrap = resources.enter_context(infra.kafka_broker(root / "kafka"))
        llm = resources.enter_context(ScriptedLLM(answer, latency_s=args.latency))
        env = {
            "CARDFLOW_LLM_BASE_URL": llm.base_url,
            "CARDFLOW_LLM_API_KEY": "sk-test-not-a-secret",
            "CARDFLOW_LLM_MODEL": "scripted-model",
            "CARDFLOW_LLM_TIMEOUT_S": "300",
            "CARDFLOW_WORK_CONCURRENCY": "2",
        }
        urls = {name: infra.sqlite_url(root / f"{name}.db") for name in SERVICES}
        stack = PipelineStack(bootstrap, urls, root, env=env)
        resources.callback(stack.stop)
        stack.start()
        with stack.client() as client:
            _, created = start_cards(client, args.cards)
        print(f"run {created['id']} started over {args.cards} cards")
        phases = asyncio.run(bench(stack.url, created["id"], counts, args.seconds, args.timeout))
    print()
    print(report(phases))
    print(
        "\nbaseline: the same probe with no pollers, on the same run, in this invocation. "
        "live: the run was in progress for the whole phase unless its status says otherwise."
    )
    live_ended = [p.pollers for p in phases if p.run == "live" and p.status_after != "running"]
    if live_ended:
        print(f"note: the run was no longer running after the live phases of {live_ended}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
