"""Process faults: SIGKILL of a stage service or of the gateway mid-run, and a second replica
that takes over when the first is killed. Every service is a real OS process on a real
broker; the stage services call a scripted OpenAI-compatible server, whose record of calls
shows how many LLM calls a fault cost."""

from __future__ import annotations

import time

import pytest

from tests.faults.report import FaultRow, record
from tests.faults.support import (
    Baseline,
    CallWindow,
    FaultScript,
    call_key,
    fault_llm_env,
    outcome,
    start_document_run,
    wait_in_flight,
    wait_stage_hit,
    wait_terminal,
)
from tests.support.scripted_llm import ScriptedLLM
from tests.support.stack import PipelineStack

# The first test of a module also starts its stack (and maybe a broker) and a clean run:
# minutes on a loaded 2-core runner, beyond the suite's default 300 s.
pytestmark = [pytest.mark.faults, pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(900)]

FULL = pytest.mark.faults_full
# The default run: SQLite; the full set (make test-faults) adds PostgreSQL.
STACK_BACKENDS = ("sqlite", pytest.param("postgresql", marks=FULL))
# Items one replica works at once (the stack's default): the most one crash can interrupt.
WORK_CONCURRENCY = 3


@pytest.fixture(scope="module")
def stack_env(fault_llm: ScriptedLLM) -> dict[str, str]:
    return fault_llm_env(fault_llm)


# One stage by default (stories: past the epics barrier, where the pipeline streams), each
# stage in the full set.
KILLED_STAGES = [
    pytest.param("stories"),
    *(pytest.param(s, marks=FULL) for s in ("analysis", "epics", "subtasks")),
]


@pytest.mark.parametrize("stage", KILLED_STAGES)
def test_sigkill_of_a_stage_service_mid_run_costs_at_most_one_call_per_item(
    fault_stack: PipelineStack,
    fault_llm: ScriptedLLM,
    fault_baseline: Baseline,
    backend: str,
    stage: str,
) -> None:
    script = FaultScript().hold(stage)
    fault_llm.reset(script)
    window = CallWindow(fault_llm)
    began = time.monotonic()
    with fault_stack.client() as client:
        started = start_document_run(client, f"kill {stage}")
        hit, _ = wait_stage_hit(client, started.run_id, window, stage)
        killed_at = time.monotonic()
        fault_stack.kill(stage)
        script.release()
        fault_stack.restart(stage)
        run = wait_terminal(client, started.run_id)
        done = outcome(client, run, started.project_id, window.count(), fault_baseline)
    interrupted = window.cut_short(stage, killed_at)
    elapsed = time.monotonic() - began

    assert run["status"] == "succeeded", (run.get("errors"), run["counts"], fault_stack.logs())
    assert done.lost == 0
    assert done.backlog.counts() == fault_baseline.backlog
    assert done.calls.items == fault_baseline.llm_items
    assert done.calls.most_for_one_item <= 2, done.calls
    # Exactly the items whose calls the kill cut short were called again, once each.
    assert interrupted, "the kill hit no LLM call"
    assert done.calls.repeated_items == {call_key(c) for c in interrupted}, done.calls
    assert done.calls.repeated == len(interrupted) <= WORK_CONCURRENCY, done.calls
    record(
        FaultRow(
            fault=f"SIGKILL {stage} mid-run",
            injected=f"kill -9 of {stage} with {len(hit)} item(s) shown running and "
            f"{len(interrupted)} LLM call(s) mid-answer; restarted at once",
            behaviour=f"run {run['status']} in {elapsed:.0f} s; the killed items were claimed "
            f"again when their lease ran out; backlog equal to a clean run's",
            backend=backend,
            run_status=run["status"],
            items=done.items,
            repeated_llm_calls=done.calls.repeated,
            lost=done.lost,
            duplicates=len(done.duplicates),
        )
    )


def test_sigkill_of_the_gateway_mid_run_its_read_model_catches_up(
    fault_stack: PipelineStack, fault_llm: ScriptedLLM, fault_baseline: Baseline, backend: str
) -> None:
    window = CallWindow(fault_llm)
    began = time.monotonic()
    with fault_stack.client() as client:
        started = start_document_run(client, "kill gateway")
        wait_in_flight(client, started.run_id, "analysis")
        last_seen = client.get(f"/v1/runs/{started.run_id}").json()
    fault_stack.kill("gateway")
    # The stage services go on without the gateway: wait until they made real progress
    # (the LLM calls of most of the run) while nobody projected it.
    down_from = len(window.calls)
    window.wait_for(down_from + fault_baseline.llm_items // 2, timeout=120)
    progressed = len(window.calls) - down_from
    fault_stack.restart("gateway")
    with fault_stack.client() as client:
        first_after = client.get(f"/v1/runs/{started.run_id}").json()
        run = wait_terminal(client, started.run_id)
        done = outcome(client, run, started.project_id, window.count(), fault_baseline)
    elapsed = time.monotonic() - began

    assert run["status"] == "succeeded", (run.get("errors"), run["counts"], fault_stack.logs())
    assert done.lost == 0
    assert done.backlog.counts() == fault_baseline.backlog
    assert run["counts"]["total"] == run["counts"]["succeeded"] == fault_baseline.items
    # The restarted gateway's view of the run went on from where the old one was: its
    # version (the ETag) did not go back, nor did any count.
    assert first_after["version"] >= last_seen["version"]
    for stage, counts in last_seen["stages"].items():
        for key in ("total", "succeeded", "failed", "cancelled"):
            assert first_after["stages"][stage][key] >= counts[key], (stage, key)
    # Nothing was redone, and the usage the gateway shows is what the LLM server saw.
    assert done.calls.repeated == 0, done.calls
    assert run["usage"]["llm_calls"] == done.calls.calls
    record(
        FaultRow(
            fault="SIGKILL gateway mid-run",
            injected=f"kill -9 of the gateway while analysis ran; down while the stages made "
            f"{progressed} LLM calls; restarted",
            behaviour=f"run {run['status']} in {elapsed:.0f} s; the read model caught up from "
            "the progress and domain topics; run counts equal the backlog",
            backend=backend,
            run_status=run["status"],
            items=done.items,
            repeated_llm_calls=done.calls.repeated,
            lost=done.lost,
            duplicates=len(done.duplicates),
        )
    )


REPLICATED_STAGE = "analysis"


def test_a_second_replica_takes_over_when_the_first_is_killed(
    fault_stack: PipelineStack, fault_llm: ScriptedLLM, fault_baseline: Baseline, backend: str
) -> None:
    stage = REPLICATED_STAGE
    fault_stack.start_replica(stage)
    script = FaultScript().hold(stage)
    fault_llm.reset(script)
    window = CallWindow(fault_llm)
    began = time.monotonic()
    with fault_stack.client() as client:
        started = start_document_run(client, "replicas")
        # More items in flight than one replica works at once: both are working.
        hit, _ = wait_stage_hit(
            client, started.run_id, window, stage, at_least=WORK_CONCURRENCY + 1
        )
        # The first replica: it also holds the outbox relay (started first), so the survivor
        # must take over the relay too, not only the items and the partitions.
        killed_at = time.monotonic()
        fault_stack.kill(stage)
        script.release()
        run = wait_terminal(client, started.run_id)
        done = outcome(client, run, started.project_id, window.count(), fault_baseline)
    # The killed replica's calls, cut short; the survivor's ran to their end.
    interrupted = window.cut_short(stage, killed_at)
    elapsed = time.monotonic() - began

    assert run["status"] == "succeeded", (run.get("errors"), run["counts"], fault_stack.logs())
    assert not fault_stack.processes[stage].alive(), "the killed replica stayed down"
    assert done.lost == 0
    assert done.backlog.counts() == fault_baseline.backlog
    assert done.calls.most_for_one_item <= 2, done.calls
    assert interrupted, "the kill hit no LLM call"
    assert done.calls.repeated_items == {call_key(c) for c in interrupted}, done.calls
    assert done.calls.repeated == len(interrupted) <= WORK_CONCURRENCY, done.calls
    record(
        FaultRow(
            fault=f"two {stage} replicas, one SIGKILLed",
            injected=f"second {stage} process (same database and groups); kill -9 of the "
            f"first with {len(hit)} items shown running across both ({len(interrupted)} LLM "
            "calls mid-answer); not restarted",
            behaviour=f"run {run['status']} in {elapsed:.0f} s; the survivor took over the "
            "partitions, the relay and, after their lease, the killed replica's items",
            backend=backend,
            run_status=run["status"],
            items=done.items,
            repeated_llm_calls=done.calls.repeated,
            lost=done.lost,
            duplicates=len(done.duplicates),
        )
    )
