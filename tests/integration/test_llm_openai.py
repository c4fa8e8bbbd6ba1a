"""The openai provider against a real HTTP server (ScriptedLLM): streaming, usage and cost,
repair, error codes, hard deadlines, and the result cache on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from contracts.backlog import CardAnalysis, Epic, Story, Subtask
from contracts.events import ErrorCode
from services.runtime.db import make_engine, make_sessions
from services.runtime.llm import (
    LLMClient,
    LLMError,
    LLMRequest,
    MemoryResultCache,
    SqlResultCache,
    build_llm_client,
    cost_usd,
)
from services.runtime.migrate import migrate
from services.runtime.settings import Settings
from services.runtime.tables import llm_cache
from tests.support.scripted_llm import (
    ScriptedLLM,
    content,
    context_overflow,
    hang_before_first_byte,
    http_error,
    instance_of,
    invalid_json,
    normal,
    rate_limited,
    refusal,
    schema_mismatch,
    slow,
    stall_midway,
    stream_error,
    truncated_json,
    unavailable,
)
from tests.support.wait import until

pytestmark = pytest.mark.integration

MARGIN_S = 0.8  # how far past a deadline a call may end (scheduling, closing the socket)


class Item(BaseModel):
    name: str
    kind: str
    hours: float = Field(ge=0, le=8)


class Answer(BaseModel):
    title: str
    items: list[Item] = Field(min_length=1, max_length=5)


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedLLM]:
    with ScriptedLLM() as llm:
        yield llm


@pytest.fixture
def llm(server: ScriptedLLM) -> Iterator[ScriptedLLM]:
    server.reset(latency_s=0.0)
    yield server
    server.reset()


def settings(llm: ScriptedLLM, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "llm_base_url": llm.base_url,
        "llm_api_key": "sk-test",
        "llm_timeout_s": 10.0,
        "llm_first_token_timeout_s": 5.0,
        "llm_stream_idle_timeout_s": 5.0,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def client(llm: ScriptedLLM, **overrides: object) -> LLMClient:
    return build_llm_client(settings(llm, **overrides), MemoryResultCache())


def request(**overrides: object) -> LLMRequest[Answer]:
    values: dict[str, object] = {
        "stage": "stories",
        "prompt_version": "stories.v1",
        "messages": [
            {"role": "system", "content": "You write stories. Answer in JSON."},
            {"role": "user", "content": "<card>\nAs a user I want to log in.\n</card>"},
        ],
        "output_model": Answer,
        "offline": lambda: Answer(title="offline", items=[Item(name="a", kind="dev", hours=1)]),
        "cache_input": "card-1\nAs a user I want to log in.",
    }
    values.update(overrides)
    return LLMRequest(**values)  # type: ignore[arg-type]


class Ticks:
    def __init__(self) -> None:
        self.values: list[int] = []

    async def __call__(self, tokens: int) -> None:
        self.values.append(tokens)


def prompt_chars(messages: list[dict[str, str]]) -> int:
    return sum(len(m["content"]) for m in messages)


# --- success -------------------------------------------------------------------------------


async def test_a_streamed_answer_reports_tokens_as_it_comes_and_its_usage_and_cost(
    llm: ScriptedLLM,
) -> None:
    llm.reset(latency_s=2.4)
    ticks = Ticks()

    result = await client(llm).generate(request(), on_tokens=ticks)

    assert isinstance(result.output, Answer)
    assert result.output.items
    [call] = llm.calls
    assert call.stream
    assert call.body["stream_options"] == {"include_usage": True}
    assert call.model == "gpt-4o-mini"
    assert call.headers["authorization"] == "Bearer sk-test"
    assert call.body["max_tokens"] == 4000
    assert call.body["temperature"] == 0.2
    rf = call.response_format
    assert rf is not None
    assert rf["type"] == "json_schema"
    assert rf["json_schema"]["name"] == "Answer"
    assert rf["json_schema"]["strict"] is False
    assert rf["json_schema"]["schema"] == Answer.model_json_schema()

    p = result.provenance
    assert (p.provider, p.model, p.offline, p.cached) == ("openai", "gpt-4o-mini", False, False)
    assert (p.attempts, p.repairs) == (1, 0)
    assert p.input_tokens == (prompt_chars(request().messages) + 3) // 4  # the usage chunk's
    assert p.output_tokens == (len(json.dumps(result.output.model_dump())) + 3) // 4
    assert p.cost_usd == cost_usd(
        "gpt-4o-mini", p.input_tokens, p.output_tokens, settings(llm).llm_prices
    )
    assert p.cost_usd > 0
    assert 2.4 <= p.duration_s < 2.4 + MARGIN_S

    # Heartbeats while streaming (about once a second), then the final count.
    assert len(ticks.values) >= 3
    assert ticks.values == sorted(ticks.values)
    assert ticks.values[-1] == p.output_tokens


async def test_without_streaming_the_whole_answer_comes_at_once(llm: ScriptedLLM) -> None:
    ticks = Ticks()
    result = await client(llm, llm_stream=False).generate(request(), on_tokens=ticks)
    [call] = llm.calls
    assert not call.stream
    assert result.provenance.output_tokens > 0
    assert result.provenance.input_tokens > 0
    assert ticks.values == [result.provenance.output_tokens]


async def test_each_stage_may_use_its_own_model(llm: ScriptedLLM) -> None:
    c = client(llm, llm_stage_models={"stories": "gpt-4o"})
    result = await c.generate(request())
    assert llm.calls[0].model == "gpt-4o" == result.provenance.model
    await c.generate(request(stage="epics"))
    assert llm.calls[1].model == "gpt-4o-mini"


async def test_an_override_schema_is_what_the_server_is_asked_for(llm: ScriptedLLM) -> None:
    schema = Answer.model_json_schema()
    schema["$defs"]["Item"]["properties"]["kind"] = {"enum": ["dev", "test"], "type": "string"}
    result = await client(llm).generate(request(json_schema=schema))
    assert llm.calls[0].schema == schema
    assert {item.kind for item in result.output.items} <= {"dev", "test"}


async def test_calls_run_concurrently(llm: ScriptedLLM) -> None:
    llm.reset(latency_s=1.0)
    c = client(llm)
    started = time.monotonic()
    await asyncio.gather(*(c.generate(request(cache_input=f"card-{i}")) for i in range(3)))
    assert llm.max_in_flight == 3
    assert time.monotonic() - started < 2.0


# --- invalid answers: one repair, then llm_invalid_output ----------------------------------


async def test_an_invalid_answer_is_repaired_by_one_re_ask(llm: ScriptedLLM) -> None:
    llm.reset([invalid_json(), normal()])

    result = await client(llm).generate(request())

    first, second = llm.calls
    p = result.provenance
    assert (p.attempts, p.repairs) == (2, 1)
    # The re-ask carries the bad answer and names what was wrong.
    assert second.messages[:2] == first.messages
    assert second.messages[2]["role"] == "assistant"
    assert second.messages[2]["content"].startswith("Sure!")
    assert second.messages[3]["role"] == "user"
    assert "not valid JSON" in second.messages[3]["content"]
    # Both calls are paid for.
    assert p.input_tokens > (prompt_chars(first.messages) + 3) // 4


async def test_a_truncated_answer_is_a_failure_that_gets_repaired(llm: ScriptedLLM) -> None:
    llm.reset([truncated_json(), normal()])
    result = await client(llm).generate(request())
    assert (result.provenance.attempts, result.provenance.repairs) == (2, 1)
    assert "cut off" in llm.calls[1].messages[-1]["content"]


async def test_a_cut_off_answer_is_not_sent_back_with_its_repair(llm: ScriptedLLM) -> None:
    """Resending a long cut-off answer can overflow the context (llama.cpp with a small
    model did: 8,255 tokens for 8,192); the re-ask says what went wrong instead."""
    llm.reset([truncated_json(), normal()])
    await client(llm).generate(request())
    first, second = llm.calls
    assert second.messages[: len(first.messages)] == first.messages
    (added,) = second.messages[len(first.messages) :]
    assert added["role"] == "user"
    assert "cut off at the output limit" in added["content"]


async def test_a_truncated_answer_is_never_accepted_even_if_it_ends_as_stop(
    llm: ScriptedLLM,
) -> None:
    llm.reset([truncated_json(finish_reason="stop"), truncated_json()])
    with pytest.raises(LLMError) as caught:
        await client(llm).generate(request())
    assert caught.value.code is ErrorCode.LLM_INVALID_OUTPUT
    assert len(llm.calls) == 2


async def test_invalid_twice_is_llm_invalid_output(llm: ScriptedLLM) -> None:
    llm.reset([schema_mismatch(), invalid_json(), normal()])

    with pytest.raises(LLMError) as caught:
        await client(llm).generate(request())

    error = caught.value
    assert error.code is ErrorCode.LLM_INVALID_OUTPUT
    assert not error.retryable
    assert "after one repair" in error.message
    assert "not valid JSON" in error.message
    assert "log in" not in error.message  # never the prompt
    assert len(llm.calls) == 2
    assert "schema mismatch" in llm.calls[1].messages[-1]["content"]
    assert error.attempts == 2
    assert error.input_tokens > 0
    assert error.cost_usd > 0


async def test_the_stage_check_counts_as_invalid_output(llm: ScriptedLLM) -> None:
    bad = {"title": "t", "items": [{"name": "ghost", "kind": "dev", "hours": 1}]}
    llm.reset([content(json.dumps(bad)), normal()])

    def no_ghosts(answer: Answer) -> None:
        if any(i.name == "ghost" for i in answer.items):
            raise ValueError("item 'ghost' references no requirement")

    result = await client(llm).generate(request(validate=no_ghosts))
    assert result.provenance.repairs == 1
    assert "references no requirement" in llm.calls[1].messages[-1]["content"]


# --- HTTP errors: one call each (the openai package's retries are off) ----------------------


async def test_429_is_rate_limited_with_retry_after_and_one_call(llm: ScriptedLLM) -> None:
    llm.reset([rate_limited("7")])
    with pytest.raises(LLMError) as caught:
        await client(llm).generate(request())
    error = caught.value
    assert error.code is ErrorCode.LLM_RATE_LIMITED
    assert error.retryable
    assert error.retry_after_s == 7
    assert len(llm.calls) == 1
    assert error.attempts == 1
    assert error.cost_usd == 0


async def test_429_retry_after_as_an_http_date(llm: ScriptedLLM) -> None:
    when = datetime.now(UTC) + timedelta(seconds=120)
    llm.reset([rate_limited(format_datetime(when, usegmt=True))])
    with pytest.raises(LLMError) as caught:
        await client(llm).generate(request())
    assert caught.value.retry_after_s == pytest.approx(120, abs=2)
    assert len(llm.calls) == 1


async def test_503_is_unavailable_and_retryable_with_one_call(llm: ScriptedLLM) -> None:
    llm.reset([unavailable(503)])
    with pytest.raises(LLMError) as caught:
        await client(llm).generate(request())
    assert caught.value.code is ErrorCode.LLM_UNAVAILABLE
    assert caught.value.retryable
    assert len(llm.calls) == 1


async def test_a_rejected_request_is_unavailable_and_not_retryable(llm: ScriptedLLM) -> None:
    llm.reset([http_error(401, code="invalid_api_key", message="Incorrect API key")])
    with pytest.raises(LLMError) as caught:
        await client(llm).generate(request())
    assert caught.value.code is ErrorCode.LLM_UNAVAILABLE
    assert not caught.value.retryable
    assert len(llm.calls) == 1


async def test_context_length_is_llm_context_overflow(llm: ScriptedLLM) -> None:
    llm.reset([context_overflow()])
    with pytest.raises(LLMError) as caught:
        await client(llm).generate(request())
    assert caught.value.code is ErrorCode.LLM_CONTEXT_OVERFLOW
    assert not caught.value.retryable
    assert len(llm.calls) == 1


LONG_CARD = "<card>\n" + "The dispatcher assigns the job to a technician. " * 60 + "\n</card>"


def long_request() -> LLMRequest[Answer]:
    return request(messages=[{"role": "user", "content": LONG_CARD}])


async def test_a_prompt_too_long_for_the_set_context_is_refused_before_sending(
    llm: ScriptedLLM,
) -> None:
    with pytest.raises(LLMError) as caught:
        await client(llm, llm_context_tokens=500).generate(long_request())
    assert caught.value.code is ErrorCode.LLM_CONTEXT_OVERFLOW
    assert not caught.value.retryable
    assert "context of 500 tokens" in caught.value.message
    assert llm.calls == [], "nothing sent that cannot fit"


async def test_the_context_is_read_from_the_servers_props_once(llm: ScriptedLLM) -> None:
    llm.context_tokens = 500
    c = client(llm)
    for _ in range(2):
        with pytest.raises(LLMError) as caught:
            await c.generate(long_request())
        assert caught.value.code is ErrorCode.LLM_CONTEXT_OVERFLOW
    assert llm.calls == []
    # A prompt that fits goes out, its output limit cut to the room the context has left.
    await c.generate(request(max_output_tokens=4000))
    (call,) = llm.calls
    assert call.body["max_tokens"] == 500 - (prompt_chars(call.messages) + 3) // 4


async def test_without_a_context_the_requests_own_limit_is_asked(llm: ScriptedLLM) -> None:
    await client(llm).generate(request(max_output_tokens=1234))
    assert llm.calls[0].body["max_tokens"] == 1234
    assert "seed" not in llm.calls[0].body


async def test_a_seed_is_sent_when_set(llm: ScriptedLLM) -> None:
    await client(llm, llm_seed=42, llm_temperature=0.0).generate(request())
    assert (llm.calls[0].body["seed"], llm.calls[0].body["temperature"]) == (42, 0.0)


async def test_nobody_listening_is_unavailable() -> None:
    c = build_llm_client(Settings(llm_base_url="http://127.0.0.1:9/v1"), None)
    with pytest.raises(LLMError) as caught:
        await c.generate(request())
    assert caught.value.code is ErrorCode.LLM_UNAVAILABLE
    assert caught.value.retryable


@pytest.mark.parametrize("stream", [True, False])
async def test_a_refusal_is_llm_refused_and_not_repaired(llm: ScriptedLLM, stream: bool) -> None:
    llm.reset([refusal(), normal()])
    with pytest.raises(LLMError) as caught:
        await client(llm, llm_stream=stream).generate(request())
    assert caught.value.code is ErrorCode.LLM_REFUSED
    assert not caught.value.retryable
    assert len(llm.calls) == 1


async def test_a_content_filter_stop_is_llm_refused(llm: ScriptedLLM) -> None:
    llm.reset([content("", finish_reason="content_filter")])
    with pytest.raises(LLMError) as caught:
        await client(llm).generate(request())
    assert caught.value.code is ErrorCode.LLM_REFUSED


# --- deadlines -----------------------------------------------------------------------------


async def timed_failure(c: LLMClient) -> tuple[LLMError, float]:
    started = time.monotonic()
    with pytest.raises(LLMError) as caught:
        await c.generate(request())
    return caught.value, time.monotonic() - started


async def test_a_server_that_never_answers_times_out_at_the_first_token_deadline(
    llm: ScriptedLLM,
) -> None:
    llm.reset([hang_before_first_byte()])
    error, elapsed = await timed_failure(
        client(llm, llm_first_token_timeout_s=1.0, llm_timeout_s=5.0)
    )
    assert error.code is ErrorCode.LLM_TIMEOUT
    assert error.retryable
    assert 1.0 <= elapsed < 1.0 + MARGIN_S
    assert len(llm.calls) == 1
    assert error.attempts == 1
    # The abandoned request is closed, not left open on the server.
    await until(lambda: llm.in_flight == 0, timeout=5, what="the hung request to close")


async def test_the_total_deadline_bounds_a_hang(llm: ScriptedLLM) -> None:
    llm.reset([hang_before_first_byte()])
    error, elapsed = await timed_failure(
        client(llm, llm_first_token_timeout_s=30.0, llm_timeout_s=1.0)
    )
    assert error.code is ErrorCode.LLM_TIMEOUT
    assert "1 s deadline" in error.message
    assert 1.0 <= elapsed < 1.0 + MARGIN_S


async def test_a_stream_that_stalls_midway_times_out(llm: ScriptedLLM) -> None:
    llm.reset([stall_midway(0.5)], latency_s=0.4)
    error, elapsed = await timed_failure(
        client(llm, llm_stream_idle_timeout_s=0.8, llm_timeout_s=10.0)
    )
    assert error.code is ErrorCode.LLM_TIMEOUT
    assert error.retryable
    assert "stalled" in error.message
    assert elapsed < 0.4 + 0.8 + MARGIN_S
    assert error.output_tokens > 0  # what streamed before the stall is counted
    await until(lambda: llm.in_flight == 0, timeout=5, what="the stalled request to close")


async def test_the_total_deadline_bounds_a_slow_but_steady_stream(llm: ScriptedLLM) -> None:
    llm.reset([slow(4.0)])
    error, elapsed = await timed_failure(
        client(llm, llm_timeout_s=1.5, llm_stream_idle_timeout_s=2.0)
    )
    assert error.code is ErrorCode.LLM_TIMEOUT
    assert 1.5 <= elapsed < 1.5 + MARGIN_S


async def test_the_deadline_covers_the_repair_re_ask(llm: ScriptedLLM) -> None:
    llm.reset([invalid_json(), hang_before_first_byte()])
    error, elapsed = await timed_failure(client(llm, llm_timeout_s=1.0))
    assert error.code is ErrorCode.LLM_TIMEOUT
    assert elapsed < 1.0 + MARGIN_S
    assert error.attempts == 2


async def test_cancelling_a_call_closes_its_request(llm: ScriptedLLM) -> None:
    llm.reset(latency_s=5.0)
    task = asyncio.create_task(client(llm).generate(request()))
    await until(lambda: llm.in_flight == 1, timeout=5, what="the call to start")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await until(lambda: llm.in_flight == 0, timeout=5, what="the request to close")


async def test_on_tokens_may_abort_the_call(llm: ScriptedLLM) -> None:
    llm.reset(latency_s=2.0)

    class RunCancelled(Exception):
        pass

    async def stop(tokens: int) -> None:
        raise RunCancelled

    with pytest.raises(RunCancelled):
        await client(llm).generate(request(), on_tokens=stop)
    await until(lambda: llm.in_flight == 0, timeout=5, what="the request to close")


# --- cache ---------------------------------------------------------------------------------


async def test_a_repeated_request_makes_no_second_http_call(llm: ScriptedLLM) -> None:
    c = client(llm)
    first = await c.generate(request())
    second = await c.generate(request())
    assert len(llm.calls) == 1
    assert second.output == first.output
    assert second.provenance.cached
    assert second.provenance.cost_usd == 0
    assert second.provenance.output_tokens == first.provenance.output_tokens


async def test_the_sql_cache_survives_a_restart_on_both_databases(
    llm: ScriptedLLM, database_url: str
) -> None:
    engine = make_engine(database_url)
    try:
        await migrate(engine)
        sessions = make_sessions(engine)
        first = await build_llm_client(settings(llm), SqlResultCache(sessions)).generate(request())
        # A new process (another client, same database) repeating the item pays nothing.
        again = await build_llm_client(settings(llm), SqlResultCache(sessions)).generate(request())
        assert len(llm.calls) == 1
        assert again.output == first.output
        assert again.provenance.cached
        assert again.provenance.cost_usd == 0
        assert again.provenance.input_tokens == first.provenance.input_tokens

        # put is insert-or-ignore: a second writer of the same key changes nothing.
        cache = SqlResultCache(sessions)
        async with sessions() as session:
            key = (await session.execute(select(llm_cache.c.key))).scalar_one()
        entry = await cache.get(key)
        assert entry is not None
        await cache.put(key, entry)
        async with sessions() as session:
            count = (await session.execute(select(func.count()).select_from(llm_cache))).scalar()
        assert count == 1

        await cache.delete(key)
        assert await cache.get(key) is None
    finally:
        await engine.dispose()


# --- the scripted server's own answers -----------------------------------------------------


@pytest.mark.parametrize("model", [CardAnalysis, Epic, Story, Subtask, Answer])
def test_scripted_answers_are_valid_instances_of_the_schema(model: type[BaseModel]) -> None:
    schema = model.model_json_schema()
    instance = instance_of(schema, seed=3)
    model.model_validate(instance)
    assert instance == instance_of(schema, seed=3)  # deterministic


def test_scripted_arrays_honour_min_and_max_items() -> None:
    schema = {
        "type": "object",
        "properties": {
            "few": {"type": "array", "items": {"type": "integer"}, "maxItems": 1},
            "many": {"type": "array", "items": {"type": "string"}, "minItems": 4},
            "kind": {"enum": ["a", "b", "c"]},
            "size": {"type": "integer", "minimum": 10, "maximum": 12},
        },
    }
    instance = instance_of(schema)
    assert len(instance["few"]) == 1
    assert len(instance["many"]) == 4
    assert instance["kind"] in {"a", "b", "c"}
    assert 10 <= instance["size"] <= 12


def test_the_scripted_server_speaks_openai_sse_to_a_plain_sync_client(
    llm: ScriptedLLM,
) -> None:
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "x" * 40}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "Answer", "schema": Answer.model_json_schema()},
        },
    }
    with httpx.Client(base_url=llm.base_url, timeout=10) as http:
        streamed = http.post("/chat/completions", json=body)
        whole = http.post("/chat/completions", json={**body, "stream": False})
    events = [line[6:] for line in streamed.text.split("\n\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    Answer.model_validate_json(text)
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["prompt_tokens"] == 10
    assert chunks[-1]["usage"]["completion_tokens"] == (len(text) + 3) // 4
    answer = whole.json()
    assert answer["choices"][0]["message"]["content"] == text  # deterministic per request
    assert [c.stream for c in llm.calls] == [True, False]


def test_a_separate_process_reaches_the_scripted_server_by_url(llm: ScriptedLLM) -> None:
    code = (
        "import sys, openai\n"
        "c = openai.OpenAI(base_url=sys.argv[1], api_key='k', max_retries=0)\n"
        "r = c.chat.completions.create(model='m', messages=[{'role': 'user', 'content': 'hi'}])\n"
        "print(r.choices[0].message.content)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, llm.base_url],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(done.stdout) == {"answer": "scripted"}  # no schema asked for
    assert len(llm.calls) == 1


# --- provider error bodies ---------------------------------------------------------------------

# Each body as a real server sends it: recorded live from llama.cpp's server, or taken from
# vLLM's, Ollama's and LiteLLM's source (a LiteLLM proxy run in front of a stub upstream),
# OpenAI's and Azure's docs; each entry names its source.
PROVIDER_ERRORS = json.loads(
    (Path(__file__).parent / "data" / "provider_errors.json").read_text(encoding="utf-8")
)


def _case_id(case: dict[str, Any]) -> str:
    return f"{case['provider']}-{case['situation']}-{case['status']}"


@pytest.mark.parametrize("case", PROVIDER_ERRORS, ids=[_case_id(c) for c in PROVIDER_ERRORS])
async def test_a_providers_error_body_maps_to_its_design_code(
    llm: ScriptedLLM, case: dict[str, Any]
) -> None:
    if case.get("stream_event"):
        llm.reset([stream_error(case["body"])])
    else:
        llm.reset([http_error(case["status"], headers=case["headers"], body=case["body"])])
    with pytest.raises(LLMError) as caught:
        await client(llm).generate(request())
    error = caught.value
    assert error.code.value == case["expected_code"], (error, case["source"])
    assert error.retryable is case["retryable"], error
    assert len(llm.calls) == 1, "the work queue owns retries: one call"
    # The provider's own reason, shortened, is in the item's message.
    fields = case["body"].get("error", case["body"])
    said = fields.get("message", "") if isinstance(fields, dict) else str(fields)
    reason = " ".join(str(said).split())[:40]
    assert reason in error.message, (reason, error.message)
    if case["situation"] == "rate_limit" and error.retryable:
        headers = {k.lower() for k in case["headers"]}
        if headers & {"retry-after", "retry-after-ms", "llm_provider-retry-after"}:
            assert error.retry_after_s is not None
            assert error.retry_after_s > 0


async def test_a_reason_that_repeats_the_prompt_is_left_out(llm: ScriptedLLM) -> None:
    """A validation error may quote the input; the item's message never carries card text."""
    echo = "Invalid value in messages[1]: '<card>\nAs a user I want to log in.\n</card>'"
    llm.reset([http_error(400, code="invalid_value", message=echo)])
    with pytest.raises(LLMError) as caught:
        await client(llm).generate(request())
    assert "log in" not in caught.value.message
    assert "400 invalid_request_error" in caught.value.message
