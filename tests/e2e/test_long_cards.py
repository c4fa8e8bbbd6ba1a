"""End to end: a card too long for the model's context is analysed in parts. The stage
services call a scripted OpenAI-compatible server that says its context as llama.cpp does
(``/props``) and refuses a longer prompt as llama.cpp does; each part's answer quotes the
first and the last sentence of the part it was given, as a careful model would."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from services.analysis import logic, parts
from tests.support.scripted_llm import RecordedCall, Reply, ScriptedLLM, content, schema_answer
from tests.support.stack import PipelineStack, wait_for_run

pytestmark = [pytest.mark.e2e, pytest.mark.kafka]

STACK_BACKENDS = ("sqlite",)
CONTEXT = 4096
TITLE = "Meter readings"
BODY = " ".join(f"Technicians MUST record reading {n} of the meter." for n in range(380))
_PART = re.compile(r"Part (\d+) of (\d+) of the card")
_SENTENCE = re.compile(r"Technicians MUST record reading \d+ of the meter\.")


def quoting_answer(call: RecordedCall) -> Reply:
    """An analysis that quotes the first and last sentence of the body it was sent."""
    if call.schema_name != "AnalysisDraft":
        return schema_answer(call)
    prompt = call.messages[-1]["content"]
    sentences = _SENTENCE.findall(prompt.split("Body:", 1)[1])
    requirements = [
        {"text": s, "quote": s, "kind": "functional"} for s in (sentences[0], sentences[-1])
    ]
    draft = {
        "summary": "Technicians record meter readings.",
        "kind": "feature",
        "personas": ["technician"],
        "requirements": requirements,
        "priority": "P2",
        "open_questions": [],
    }
    return content(json.dumps(draft))


@pytest.fixture(scope="module")
def llm() -> Iterator[ScriptedLLM]:
    with ScriptedLLM(quoting_answer, latency_s=0.3) as server:
        server.context_tokens = CONTEXT
        yield server


@pytest.fixture(scope="module")
def stack_env(llm: ScriptedLLM) -> dict[str, str]:
    return {
        "CARDFLOW_LLM_BASE_URL": llm.base_url,
        "CARDFLOW_LLM_MODEL": "scripted-model",
        "CARDFLOW_LLM_TIMEOUT_S": "30",
    }


def prompt_tokens(call: RecordedCall) -> int:
    return (len("".join(str(m.get("content") or "") for m in call.messages)) + 3) // 4


def test_a_card_too_long_for_the_context_is_analysed_in_parts_that_fit(
    stack: PipelineStack, llm: ScriptedLLM
) -> None:
    whole = logic.Card("c", "p", TITLE, BODY)
    expected = parts.split(whole, CONTEXT)
    assert len(expected) >= 3
    with stack.client() as client:
        project = client.post("/v1/projects", json={"name": "Long card"}).json()
        added = client.post(
            f"/v1/projects/{project['id']}/cards", json={"cards": [{"title": TITLE, "body": BODY}]}
        )
        assert added.status_code == 202, added.text
        run = client.post(f"/v1/projects/{project['id']}/runs", json={"stage": "analysis"}).json()
        snapshots = wait_for_run(client, run["id"], timeout_s=120, etag=None)
        final = snapshots[-1]
        (card,) = client.get(f"/v1/projects/{project['id']}/cards").json()["cards"]
    assert final["status"] == "succeeded", (final, stack.logs())
    calls = llm.calls_matching(lambda c: c.schema_name == "AnalysisDraft")
    assert len(calls) == len(expected)
    for call in calls:
        # Every part fits the context with the most it may answer: nothing cut off, nothing
        # refused.
        assert prompt_tokens(call) + int(call.body["max_tokens"]) <= CONTEXT
    said = sorted(
        re.search(r"Part (\d+) of (\d+)", c.messages[-1]["content"]).groups() for c in calls
    )  # type: ignore[union-attr]
    assert said == [(str(n), str(len(expected))) for n in range(1, len(expected) + 1)]
    # Asked at once, within the service's three calls in flight.
    starts = sorted(c.monotonic for c in calls)
    assert starts[1] - starts[0] < 0.3 * 0.9, "the parts were not asked at once"
    # One analysis of the whole card: every part's first and last sentence, traced into the
    # whole body, once each, in body order.
    requirements = card["analysis"]["requirements"]
    assert len(requirements) == 2 * len(expected)
    spans = [(r["source_span"]["start"], r["source_span"]["end"]) for r in requirements]
    assert spans == sorted(spans)
    for requirement, (start, end) in zip(requirements, spans, strict=True):
        assert BODY[start:end] == requirement["text"]
    for part in expected:
        first = _SENTENCE.search(part.card.body)
        assert first is not None
        assert first.group() in [r["text"] for r in requirements]
    # The run's usage counts each part's call; the card's provenance joins them.
    assert final["usage"]["llm_calls"] == len(expected)
    assert card["provenance"]["attempts"] == len(expected)
    assert card["provenance"]["input_tokens"] == sum(prompt_tokens(c) for c in calls)


def test_the_scripted_server_refuses_a_prompt_longer_than_its_context_as_llama_cpp(
    llm: ScriptedLLM,
) -> None:
    """The guard above is real: a prompt over the context is refused, not answered."""
    body: dict[str, Any] = {
        "model": "scripted-model",
        "messages": [{"role": "user", "content": "x" * (4 * CONTEXT + 8)}],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "Note", "schema": {"type": "object"}},
        },
    }
    answer = httpx.post(f"{llm.base_url}/chat/completions", json=body, timeout=10)
    assert answer.status_code == 400
    assert answer.json()["error"]["type"] == "exceed_context_size_error"
