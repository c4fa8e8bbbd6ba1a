"""Fault-injection suite: every service a real OS process on a real broker; faults injected
for real (SIGKILL, broker stop, a misbehaving scripted LLM server)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.faults import report
from tests.faults.support import (
    Baseline,
    CallWindow,
    FaultScript,
    as_baseline,
    outcome,
    start_document_run,
    wait_terminal,
)
from tests.support.scripted_llm import ScriptedLLM
from tests.support.stack import PipelineStack

# Per-call latency of the scripted LLM: long enough that a run has items in flight for a
# fault to hit, short enough that a 12-card pipeline takes seconds, not minutes. A module
# may set FAULT_LLM_LATENCY_S.
FAULT_LLM_LATENCY_S = 0.6


def pytest_sessionfinish(session: pytest.Session) -> None:
    report.write(report.ROWS)


@pytest.fixture(scope="module")
def fault_llm(request: pytest.FixtureRequest) -> Iterator[ScriptedLLM]:
    """A scripted OpenAI-compatible server for the module's stack, answering with
    ``FaultScript`` (valid, deterministic per prompt, countable per item)."""
    latency = getattr(request.module, "FAULT_LLM_LATENCY_S", FAULT_LLM_LATENCY_S)
    with ScriptedLLM(FaultScript(), latency_s=latency) as server:
        yield server


@pytest.fixture
def fault_stack(stack: PipelineStack, fault_llm: ScriptedLLM) -> Iterator[PipelineStack]:
    """The module's stack, handed back healthy: whatever a test killed and did not restart
    (it failed midway) is restarted, and the LLM script is back to its default."""
    fault_llm.reset(FaultScript())
    try:
        yield stack
    finally:
        fault_llm.reset(FaultScript())
        exits = {key: stack.remove(key) for key in [k for k in stack.processes if "#" in k]}
        stack.revive()
        assert all(code in (None, 0) for code in exits.values()), f"unclean exits: {exits}"


@pytest.fixture(scope="module")
def fault_baseline(stack: PipelineStack, fault_llm: ScriptedLLM) -> Baseline:
    """A clean run of the document on the module's stack: the counts a faulted run must
    match (the scripted answers are deterministic)."""
    fault_llm.reset(FaultScript())
    window = CallWindow(fault_llm)
    with stack.client() as client:
        started = start_document_run(client, "clean run")
        run = wait_terminal(client, started.run_id)
        assert run["status"] == "succeeded", (run, stack.logs())
        done = outcome(client, run, started.project_id, window.count())
    assert done.lost == 0, done
    assert done.calls.repeated == 0, done.calls
    return as_baseline(done)
