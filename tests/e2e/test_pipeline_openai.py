"""End to end through the openai path: the stage services call a scripted
OpenAI-compatible server (a real HTTP server on 127.0.0.1) instead of the offline drafts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from services.epics.app import GROUPING_TITLE
from tests.e2e.test_pipeline import check_backlog, check_snapshots, start_pipeline
from tests.support.scripted_llm import GROUPING_RUN, ScriptedLLM
from tests.support.scripted_llm import schema_answer as answer
from tests.support.stack import PipelineStack, wait_for_run

pytestmark = [pytest.mark.e2e, pytest.mark.kafka]

STACK_BACKENDS = ("sqlite",)
LATENCY_S = 0.3


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
    }


def test_the_pipeline_runs_on_an_openai_compatible_endpoint(
    stack: PipelineStack, llm: ScriptedLLM
) -> None:
    llm.reset(answer)
    with stack.client() as client:
        project_id, created = start_pipeline(client)
        snapshots = [created, *wait_for_run(client, created["id"], etag=f'"v{created["version"]}"')]
        check_snapshots(snapshots)
        final = snapshots[-1]
        assert final["status"] == "succeeded", (final, stack.logs())
        check_backlog(client, project_id)

        items = client.get(f"/v1/runs/{created['id']}/items").json()["items"]
        provenances = [i["provenance"] for i in items]
        assert all(p["provider"] == "openai" and not p["offline"] for p in provenances)
        assert all(p["model"] == "scripted-model" for p in provenances)
        assert all(p["input_tokens"] > 0 and p["output_tokens"] > 0 for p in provenances)
        # One call per item: nothing retried, repaired or paid twice.
        assert len(llm.calls) == final["counts"]["total"] == final["usage"]["llm_calls"]
        assert final["usage"]["output_tokens"] > 0
        # Each stage service works at most 3 items at once (the default per replica).
        assert llm.max_in_flight <= 4 * 3
        streamed = [c for c in llm.calls if c.stream]
        assert streamed, "answers are streamed"
        assert all(c.body.get("max_tokens") for c in llm.calls)
        system_prompts = [c.messages[0]["content"] for c in llm.calls]
        assert all("untrusted" in p for p in system_prompts)

        # Epics by meaning: one grouping call over the whole scope, its own item of the
        # epics stage, and the epics are the sets it answered (runs of GROUPING_RUN
        # requirements in document order), not the document's structure.
        grouping_calls = llm.calls_matching(lambda c: c.schema_name == "EpicGrouping")
        assert len(grouping_calls) == 1
        epic_items = [i for i in items if i["stage"] == "epics"]
        planning = [i for i in items if i["planning"]]
        assert len(planning) == 1
        assert planning[0]["stage"] == "epics"
        assert planning[0]["title"] == GROUPING_TITLE
        assert planning[0]["state"] == "succeeded"
        assert planning[0]["provenance"]["provider"] == "openai"
        handles = grouping_calls[0].schema["$defs"]["ProposedEpic"]["properties"]
        asked = len(handles["requirements"]["items"]["enum"])
        tree = client.get(f"/v1/projects/{project_id}/subtasks").json()["epics"]
        sizes = [len(e["epic"]["requirement_ids"]) for e in tree]
        assert sum(sizes) == asked
        assert len(tree) == len(epic_items) - 1 == -(-asked // GROUPING_RUN)
        assert all(size <= GROUPING_RUN for size in sizes)
