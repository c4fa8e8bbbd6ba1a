"""Broker fault: the Kafka broker stopped mid-run for 20 s and started again (same port,
same data dir). The module runs its own broker (the session's is shared by every other
test), so its stack is built on that one."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.faults.report import FaultRow, record
from tests.faults.support import (
    Baseline,
    CallWindow,
    FaultScript,
    fault_llm_env,
    outcome,
    start_document_run,
    wait_stage_hit,
    wait_terminal,
)
from tests.support import infra
from tests.support.scripted_llm import ScriptedLLM
from tests.support.stack import PipelineStack
from tests.support.wait import until_sync

# The first test of a module also starts its stack (and maybe a broker) and a clean run:
# minutes on a loaded 2-core runner, beyond the suite's default 300 s.
pytestmark = [pytest.mark.faults, pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(900)]

STACK_BACKENDS = ("sqlite", pytest.param("postgresql", marks=pytest.mark.faults_full))
OUTAGE_S = 20.0
# A broker restart is ~10 s on a quiet machine, minutes on a loaded 2-core one.
BROKER_RESTART_TIMEOUT_S = 300.0
# How long in-flight work may finish at shutdown. A stop may take that, plus the fixed
# deadlines of the steps that wait on the broker (closing the consumers, 5 s; draining the
# outbox, 5 s; stopping the relay, 5 s) and some slack, and no longer.
GRACEFUL_TIMEOUT_S = 10.0
STOP_BOUND_S = GRACEFUL_TIMEOUT_S + 3 * 5.0 + 15.0


@pytest.fixture(scope="module")
def own_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[infra.LocalKafka]:
    with contextlib.ExitStack() as resources:
        try:
            broker = resources.enter_context(
                infra.own_local_kafka(tmp_path_factory.mktemp("own-kafka"))
            )
        except infra.InfraError as error:
            pytest.fail(str(error), pytrace=False)
        yield broker


@pytest.fixture(scope="module")
def kafka_bootstrap(own_broker: infra.LocalKafka) -> str:
    """Overrides the session's broker for this module's stack."""
    return own_broker.bootstrap


@pytest.fixture(scope="module")
def stack_env(fault_llm: ScriptedLLM) -> dict[str, str]:
    return fault_llm_env(fault_llm, CARDFLOW_KAFKA_GRACEFUL_TIMEOUT_S=str(GRACEFUL_TIMEOUT_S))


def ride_out_outage(stack: PipelineStack, client: httpx.Client, run_id: str, until: float) -> int:
    """Until the outage is over: every service stays up and the gateway keeps answering
    from its read model. How many reads it answered."""
    answered = 0

    def over() -> bool:
        nonlocal answered
        dead = [name for name, proc in stack.processes.items() if not proc.alive()]
        assert not dead, f"{dead} exited while the broker was down:\n{stack.logs()}"
        answered += client.get(f"/v1/runs/{run_id}").status_code == 200
        return time.monotonic() >= until

    until_sync(over, timeout=OUTAGE_S + 30, interval=1.0, what="the end of the outage")
    return answered


def test_the_broker_stopped_mid_run_for_20s_then_restarted(
    fault_stack: PipelineStack,
    fault_llm: ScriptedLLM,
    fault_baseline: Baseline,
    own_broker: infra.LocalKafka,
    backend: str,
) -> None:
    # Analysis calls held mid-answer when the broker goes: they finish during the outage.
    script = FaultScript().hold("analysis")
    fault_llm.reset(script)
    window = CallWindow(fault_llm)
    began = time.monotonic()
    with fault_stack.client() as client:
        started = start_document_run(client, "broker outage")
        wait_stage_hit(client, started.run_id, window, "analysis")
        calls_at_stop = len(window.calls)
        own_broker.stop()
        stopped = time.monotonic()
        script.release()
        answered = ride_out_outage(fault_stack, client, started.run_id, stopped + OUTAGE_S)
        during = len(window.calls) - calls_at_stop
        restart_s = own_broker.restart(BROKER_RESTART_TIMEOUT_S)
        run = wait_terminal(client, started.run_id)
        done = outcome(client, run, started.project_id, window.count(), fault_baseline)
    elapsed = time.monotonic() - began

    assert run["status"] == "succeeded", (run, fault_stack.logs())
    assert answered > 0, "the gateway did not answer while the broker was down"
    assert during > 0, "no LLM work went on while the broker was down"
    assert done.lost == 0
    assert done.backlog.counts() == fault_baseline.backlog
    assert done.calls.items == fault_baseline.llm_items
    assert done.calls.most_for_one_item <= 2, done.calls
    record(
        FaultRow(
            fault="Kafka broker down 20 s mid-run",
            injected=f"broker stopped (SIGTERM) with analysis items in flight, restarted after "
            f"{OUTAGE_S:.0f} s on the same port and data dir (ready in {restart_s:.0f} s)",
            behaviour=_behaviour(run, elapsed, during),
            backend=backend,
            run_status=run["status"],
            items=done.items,
            repeated_llm_calls=done.calls.repeated,
            lost=done.lost,
            duplicates=len(done.duplicates),
        )
    )


def _behaviour(run: dict[str, Any], elapsed: float, during: int) -> str:
    return (
        f"run {run['status']} in {elapsed:.0f} s; no service exited; the stages went on "
        f"working during the outage ({during} LLM calls, results kept in their outboxes), "
        "the API answered from the read model throughout; all caught up after the restart"
    )


def test_a_service_stops_in_bounded_time_while_the_broker_does_not_answer(
    fault_stack: PipelineStack,
    fault_llm: ScriptedLLM,
    fault_baseline: Baseline,
    own_broker: infra.LocalKafka,
    backend: str,
) -> None:
    """An orchestrator restarting services while the broker does not answer (a partition,
    a stalled broker; a rolling deploy or a node drain at that moment) needs them to stop
    within their graceful timeout, with events still unpublished in their outbox and the
    relay caught mid-transaction (lost neither way: the outbox keeps them)."""
    service = "analysis"
    script = FaultScript().hold(service)
    fault_llm.reset(script)
    window = CallWindow(fault_llm)
    with fault_stack.client() as client:
        started = start_document_run(client, "stop in a partition")
        _, held = wait_stage_hit(client, started.run_id, window, service)
        # Frozen, not stopped: connections stay open and requests go unanswered, so
        # whatever waits on the broker waits, rather than failing fast on a refused connect.
        own_broker.freeze()
        script.release()
        # The held items finish meanwhile: their results and events wait in the outbox.
        until_sync(
            lambda: all(c.ended is not None for c in held), timeout=60, what="the held calls"
        )
        proc = fault_stack.processes[service]
        began = time.monotonic()
        try:
            code: int | None = proc.terminate(timeout=60)
        except AssertionError:
            code = None  # still running after 60 s: SIGKILLed
        stop_s = time.monotonic() - began
        log_tail = proc.log_tail(30)
        own_broker.thaw()
        fault_stack.restart(service)
        run = wait_terminal(client, started.run_id)
        done = outcome(client, run, started.project_id, window.count(), fault_baseline)

    record(
        FaultRow(
            fault="SIGTERM while the broker does not answer",
            injected=f"broker frozen (SIGSTOP) mid-run; {service} finished {len(held)} items "
            f"into its outbox, then got SIGTERM (graceful timeout {GRACEFUL_TIMEOUT_S:.0f} s); "
            f"broker thawed, {service} started again",
            behaviour=f"{service} exited with {code} after {stop_s:.0f} s; run "
            f"{run['status']}, its outboxed events published after the restart",
            backend=backend,
            run_status=run["status"],
            items=done.items,
            repeated_llm_calls=done.calls.repeated,
            lost=done.lost,
            duplicates=len(done.duplicates),
        )
    )
    assert code == 0, f"{service} exit code {code} after {stop_s:.0f} s:\n{log_tail}"
    assert stop_s <= STOP_BOUND_S, f"{service} took {stop_s:.0f} s to stop:\n{log_tail}"
    assert run["status"] == "succeeded", (run, fault_stack.logs())
    assert done.lost == 0
    assert done.backlog.counts() == fault_baseline.backlog
    assert done.calls.most_for_one_item <= 2, done.calls
