"""Run controls end to end, counted at a scripted OpenAI-compatible server: cancel stops a
pipeline and no LLM call starts after it is acknowledged; retry reruns only what did not
finish; a budget stops a run before it spends past it; the fleet-wide ceiling on LLM calls
in flight holds across two replicas of every stage service."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.test_pipeline import check_backlog, start_pipeline
from tests.support.scripted_llm import ScriptedLLM
from tests.support.scripted_llm import schema_answer as answer
from tests.support.stack import STAGES, PipelineStack, wait_for_run
from tests.support.wait import until_sync

pytestmark = [pytest.mark.e2e, pytest.mark.kafka]

STACK_BACKENDS = ("sqlite",)
LATENCY_S = 0.6
MAX_IN_FLIGHT = 3
# USD per 1M tokens: a call's estimate (prompt + 4000 answer tokens) is about $0.05.
PRICE = 10.0


@pytest.fixture(scope="module")
def llm() -> Iterator[ScriptedLLM]:
    with ScriptedLLM(answer, latency_s=LATENCY_S) as server:
        yield server


@pytest.fixture(scope="module")
def stack_env(llm: ScriptedLLM) -> dict[str, str]:
    return {
        "CARDFLOW_LLM_BASE_URL": llm.base_url,
        "CARDFLOW_LLM_API_KEY": "sk-test-not-a-secret",
        "CARDFLOW_LLM_MODEL": "scripted-model",
        "CARDFLOW_LLM_TIMEOUT_S": "30",
        "CARDFLOW_LLM_PRICES": json.dumps({"scripted-model": [PRICE, PRICE]}),
        "CARDFLOW_LLM_MAX_IN_FLIGHT": str(MAX_IN_FLIGHT),
        "CARDFLOW_WORK_CONCURRENCY": "4",
    }


def run_of(client: httpx.Client, run_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/runs/{run_id}")
    response.raise_for_status()
    return dict(response.json())


def test_cancel_stops_a_pipeline_and_retry_finishes_it(
    stack: PipelineStack, llm: ScriptedLLM
) -> None:
    llm.reset(answer)
    # Three calls answer; the rest wait at the server until the cancel is acknowledged: the
    # cancel lands while items are in flight and others wait, whatever the machine's pace.
    llm.hold_from(3)
    with stack.client() as client:
        project_id, created = start_pipeline(client)
        run_id = created["id"]

        def underway() -> dict[str, Any] | None:
            run = run_of(client, run_id)
            done = run["counts"]["succeeded"] >= 3 and run["in_progress"] and llm.held
            return run if done else None

        until_sync(underway, timeout=120, what="three items done and others held in flight")
        cancel = client.post(f"/v1/runs/{run_id}/cancel")
        acknowledged = time.time()
        llm.release()
        assert cancel.status_code == 202, cancel.text
        assert cancel.json()["status"] in ("cancelling", "cancelled")
        again = client.post(f"/v1/runs/{run_id}/cancel")
        assert again.status_code in (202, 409), "a repeated cancel is harmless"

        final = wait_for_run(client, run_id, timeout_s=60)[-1]
        assert final["status"] == "cancelled", final
        late = [c for c in llm.calls if c.time > acknowledged]
        assert late == [], f"{len(late)} LLM call(s) started after the cancel was acknowledged"
        counts = final["counts"]
        assert counts["cancelled"] > 0
        assert counts["succeeded"] >= 3
        assert counts["running"] == counts["pending"] == 0
        assert {e["code"] for e in final["errors"]} <= {"cancelled"}

        finished = client.post(f"/v1/runs/{run_id}/cancel")
        assert finished.status_code == 409
        assert finished.json()["code"] == "run_finished"

        calls_before_retry = len(llm.calls)
        succeeded_before = counts["succeeded"]
        retry = client.post(f"/v1/runs/{run_id}/retry")
        assert retry.status_code == 202, retry.text
        assert retry.json()["status"] in ("queued", "running")
        final = wait_for_run(client, run_id, timeout_s=180)[-1]
        assert final["status"] == "succeeded", (final, stack.logs())
        assert final["counts"]["cancelled"] == 0
        check_backlog(client, project_id)
        # Finished items were not redone: the retry called the LLM for the rest only.
        redone = len(llm.calls) - calls_before_retry
        assert redone <= final["counts"]["total"] - succeeded_before, (redone, final["counts"])

        nothing = client.post(f"/v1/runs/{run_id}/retry")
        assert nothing.status_code == 409
        assert nothing.json()["code"] == "nothing_to_retry"


def test_a_budget_stops_the_run_before_it_spends_past_it(
    stack: PipelineStack, llm: ScriptedLLM
) -> None:
    llm.reset(answer)
    # A call is estimated at its prompt plus the analysis stage's 1,024-token answer limit
    # (at $10 per million tokens, over a cent) and costs less: a few fit in $0.03, not ten.
    budget = 0.03
    with stack.client() as client:
        project = client.post("/v1/projects", json={"name": "On a budget"}).json()
        cards = [
            {"title": f"Card {n}", "body": f"Requirement {n}: users can do thing {n}."}
            for n in range(10)
        ]
        client.post(f"/v1/projects/{project['id']}/cards", json={"cards": cards}).raise_for_status()
        created = client.post(
            f"/v1/projects/{project['id']}/runs",
            json={"stage": "analysis", "options": {"budget_usd": budget}},
        )
        assert created.status_code == 202, created.text
        final = wait_for_run(client, created.json()["id"], timeout_s=120)[-1]
    assert final["status"] == "partial", final["usage"]
    codes = {e["code"] for e in final["errors"]}
    assert codes == {"budget_exceeded"}, final["errors"]
    assert 0 < final["usage"]["cost_usd"] <= budget
    assert final["counts"]["succeeded"] == final["usage"]["llm_calls"] == len(llm.calls)


def test_the_in_flight_ceiling_holds_across_replicas_of_every_service(
    stack: PipelineStack, llm: ScriptedLLM
) -> None:
    llm.reset(answer)
    replicas = [stack.start_replica(name) for name in STAGES]
    nonce = uuid.uuid4().hex[:8]  # inputs never answered before: no result cache hit
    try:
        with stack.client() as client:
            project = client.post("/v1/projects", json={"name": "Ceiling"}).json()
            cards = [
                {"title": f"Card {n} {nonce}", "body": f"Requirement {n} ({nonce}): users do {n}."}
                for n in range(16)
            ]
            added = client.post(f"/v1/projects/{project['id']}/cards", json={"cards": cards})
            added.raise_for_status()
            created = client.post(f"/v1/projects/{project['id']}/runs", json={"stage": "analysis"})
            assert created.status_code == 202, created.text
            final = wait_for_run(client, created.json()["id"], timeout_s=240)[-1]
            assert final["status"] == "succeeded", (final, stack.logs())
    finally:
        for key in replicas:
            stack.remove(key)
    assert len(llm.calls) >= 16, "every card called the LLM"
    # 2 replicas x 4 items each could call 8 at once without the gate.
    assert llm.max_in_flight == MAX_IN_FLIGHT
