"""The LLM client's pure parts: offline provider, cache, prices, Retry-After, error mapping."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from pydantic import BaseModel, Field

from contracts.backlog import Provenance
from contracts.events import ErrorCode
from services.runtime.llm import (
    CachedAnswer,
    LLMClient,
    LLMError,
    LLMRequest,
    LLMResult,
    MemoryResultCache,
    OfflineProvider,
    OpenAIProvider,
    build_llm_client,
    cache_key,
    cost_usd,
    error_for_status,
    estimate_tokens,
    parse_retry_after,
    price_for,
)
from services.runtime.llm.answers import InvalidAnswer, parse_answer
from services.runtime.llm.errors import is_context_overflow
from services.runtime.llm.openai_provider import schema_name
from services.runtime.llm.request import OnTokens, T
from services.runtime.llm.spend import Heartbeat
from services.runtime.settings import Settings


class Item(BaseModel):
    name: str
    hours: float = Field(ge=0)


class Answer(BaseModel):
    title: str
    items: list[Item] = Field(min_length=1)


DRAFT = Answer(title="draft", items=[Item(name="one", hours=1.5)])


def request(**overrides: object) -> LLMRequest[Answer]:
    values: dict[str, object] = {
        "stage": "stories",
        "prompt_version": "stories.v1",
        "messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "u" * 40}],
        "output_model": Answer,
        "offline": lambda: DRAFT,
        "cache_input": "card-1: the text",
    }
    values.update(overrides)
    return LLMRequest(**values)  # type: ignore[arg-type]


class Ticks:
    def __init__(self) -> None:
        self.values: list[int] = []

    async def __call__(self, tokens: int) -> None:
        self.values.append(tokens)


# --- offline provider ----------------------------------------------------------------------


async def test_offline_provider_returns_the_stage_draft_marked_offline() -> None:
    client = build_llm_client(Settings(llm_base_url=None), MemoryResultCache())
    ticks = Ticks()

    result = await client.generate(request(), on_tokens=ticks)

    assert result.output == DRAFT
    p = result.provenance
    assert (p.provider, p.model, p.offline, p.cached) == ("offline", "offline", True, False)
    assert p.prompt_version == "stories.v1"
    assert p.cost_usd == 0
    assert p.attempts == 1
    assert p.repairs == 0
    assert p.output_tokens == estimate_tokens(DRAFT.model_dump_json())
    assert p.input_tokens == estimate_tokens("sys" + "u" * 40)
    assert ticks.values == [p.output_tokens]  # no latency: once, at the end
    assert client.offline
    assert client.provider == "offline"


async def test_offline_drafts_are_not_cached() -> None:
    cache = MemoryResultCache()
    client = build_llm_client(Settings(llm_base_url=None), cache)
    await client.generate(request())
    assert cache.entries == {}


async def test_offline_latency_streams_growing_token_counts() -> None:
    tokens = estimate_tokens(DRAFT.model_dump_json())
    # 0.2 s before the first token, then ~1.3 s of streaming: a heartbeat midway.
    settings = Settings(llm_offline_latency_s=0.2, llm_offline_tokens_per_s=tokens / 1.3)
    ticks = Ticks()
    started = time.monotonic()

    result = await OfflineProvider(settings).generate(request(), ticks)

    assert time.monotonic() - started >= 1.4
    assert result.provenance.duration_s >= 1.4
    assert len(ticks.values) >= 2
    assert ticks.values == sorted(ticks.values)
    assert ticks.values[-1] == result.provenance.output_tokens == tokens


async def test_an_invalid_offline_draft_is_invalid_output_not_retried() -> None:
    def reject(answer: Answer) -> None:
        raise ValueError("item names must be unique")

    with pytest.raises(LLMError) as caught:
        await build_llm_client(Settings(llm_base_url=None)).generate(request(validate=reject))
    assert caught.value.code is ErrorCode.LLM_INVALID_OUTPUT
    assert not caught.value.retryable
    assert "item names must be unique" in caught.value.message


def test_build_llm_client_picks_the_provider_from_settings() -> None:
    assert build_llm_client(Settings(llm_base_url=None), None).provider == "offline"
    client = build_llm_client(
        Settings(
            llm_base_url="http://127.0.0.1:9/v1",
            llm_model="m1",
            llm_stage_models={"epics": "m2"},
        ),
        None,
    )
    assert client.provider == "openai"
    assert not client.offline
    assert client.model_for("stories") == "m1"
    assert client.model_for("epics") == "m2"


def test_llm_settings_read_json_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARDFLOW_LLM_PRICES", '{"local-model": [0.5, 1.5]}')
    monkeypatch.setenv("CARDFLOW_LLM_STAGE_MODELS", '{"stories": "gpt-4o"}')
    monkeypatch.setenv("CARDFLOW_LLM_API_KEY", "sk-secret")
    settings = Settings()
    assert settings.llm_prices == {"local-model": (0.5, 1.5)}
    assert settings.llm_stage_models == {"stories": "gpt-4o"}
    assert "sk-secret" not in repr(settings)


# --- cache ---------------------------------------------------------------------------------


class FakeProvider:
    """Counts calls; answers like a paid model would."""

    name = "openai"
    offline = False

    def __init__(self) -> None:
        self.calls = 0
        self.fail: LLMError | None = None

    def model_for(self, stage: str) -> str:
        return "gpt-4o-mini"

    async def context_tokens(self) -> int | None:
        return None

    async def aclose(self) -> None:
        return None

    async def generate(self, request: LLMRequest[T], on_tokens: OnTokens | None) -> LLMResult[T]:
        self.calls += 1
        if self.fail is not None:
            raise self.fail
        output = request.output_model.model_validate(
            {"title": f"answer {self.calls}", "items": [{"name": "a", "hours": 2}]}
        )
        provenance = Provenance(
            provider="openai",
            model="gpt-4o-mini",
            prompt_version=request.prompt_version,
            offline=False,
            input_tokens=100,
            output_tokens=50,
            cost_usd=0.25,
            attempts=2,
            repairs=1,
            duration_s=3.0,
        )
        return LLMResult(output, provenance)


async def test_a_repeated_request_is_served_from_the_cache_without_paying() -> None:
    provider, cache = FakeProvider(), MemoryResultCache()
    client = LLMClient(provider, cache)

    first = await client.generate(request())
    second = await client.generate(request())

    assert provider.calls == 1
    assert second.output == first.output
    assert not first.provenance.cached
    assert first.provenance.cost_usd == 0.25
    p = second.provenance
    assert p.cached
    assert p.cost_usd == 0
    # What the answer took when it was paid for, as recorded.
    assert (p.input_tokens, p.output_tokens, p.attempts, p.repairs) == (100, 50, 2, 1)
    assert p.duration_s < 1


@pytest.mark.parametrize(
    "change",
    [
        {"stage": "subtasks"},
        {"prompt_version": "stories.v2"},
        {"cache_input": "card-1: another text"},
        {"json_schema": {"type": "object", "properties": {"title": {"enum": ["x"]}}}},
    ],
)
async def test_the_cache_key_holds_stage_prompt_version_input_and_schema(
    change: dict[str, object],
) -> None:
    provider = FakeProvider()
    client = LLMClient(provider, MemoryResultCache())
    await client.generate(request())
    await client.generate(request(**change))
    assert provider.calls == 2


def test_the_cache_key_holds_the_model() -> None:
    schema = Answer.model_json_schema()
    a = cache_key("stories", "v1", "gpt-4o-mini", "in", schema)
    assert a == cache_key("stories", "v1", "gpt-4o-mini", "in", dict(reversed(schema.items())))
    assert a != cache_key("stories", "v1", "gpt-4o", "in", schema)
    assert len(a) == 64


async def test_a_cached_answer_failing_the_request_check_is_dropped_and_asked_again() -> None:
    provider, cache = FakeProvider(), MemoryResultCache()
    client = LLMClient(provider, cache)
    await client.generate(request())

    def only_fresh(answer: Answer) -> None:
        if answer.title == "answer 1":
            raise ValueError("stale")

    result = await client.generate(request(validate=only_fresh))
    assert provider.calls == 2
    assert result.output.title == "answer 2"
    assert not result.provenance.cached
    assert len(cache.entries) == 1  # the new answer replaced the dropped one


async def test_failed_calls_are_not_cached() -> None:
    provider, cache = FakeProvider(), MemoryResultCache()
    provider.fail = LLMError(ErrorCode.LLM_UNAVAILABLE, "down", retryable=True)
    client = LLMClient(provider, cache)
    with pytest.raises(LLMError):
        await client.generate(request())
    assert cache.entries == {}


class BrokenCache:
    async def get(self, key: str) -> CachedAnswer | None:
        raise ConnectionError("database is down")

    async def put(self, key: str, answer: CachedAnswer) -> None:
        raise ConnectionError("database is down")

    async def delete(self, key: str) -> None:
        raise ConnectionError("database is down")


async def test_a_broken_cache_costs_a_call_never_the_result() -> None:
    provider = FakeProvider()
    result = await LLMClient(provider, BrokenCache()).generate(request())
    assert result.output.title == "answer 1"


async def test_memory_cache_put_keeps_the_first_entry() -> None:
    cache = MemoryResultCache()
    p = Provenance(provider="openai", model="m", prompt_version="v", offline=False)
    await cache.put("k", CachedAnswer('{"a": 1}', p))
    await cache.put("k", CachedAnswer('{"a": 2}', p))
    entry = await cache.get("k")
    assert entry is not None
    assert entry.output_json == '{"a": 1}'


# --- prices --------------------------------------------------------------------------------


def test_cost_comes_from_the_price_table_per_million_tokens() -> None:
    prices = Settings.model_fields["llm_prices"].default  # the defaults, whatever the env
    assert cost_usd("gpt-4o-mini", 1_000_000, 1_000_000, prices) == pytest.approx(0.75)
    assert cost_usd("gpt-4o-mini", 2_000, 500, prices) == pytest.approx(0.0006)
    assert cost_usd("gpt-4o", 1_000, 1_000, prices) == pytest.approx(0.0125)


def test_a_dated_model_name_takes_its_base_price_and_an_unknown_one_costs_zero() -> None:
    prices = {"gpt-4o": (2.5, 10.0), "gpt-4o-mini": (0.15, 0.6)}
    assert price_for("gpt-4o-mini-2024-07-18", prices) == (0.15, 0.6)
    assert price_for("gpt-4o-2024-08-06", prices) == (2.5, 10.0)
    assert price_for("gpt-4omni", prices) is None
    assert cost_usd("llama3:8b", 10_000, 10_000, prices) == 0.0


# --- Retry-After and error mapping ---------------------------------------------------------


def test_retry_after_in_seconds_milliseconds_or_as_an_http_date() -> None:
    assert parse_retry_after({"Retry-After": "120"}) == 120
    assert parse_retry_after({"retry-after": " 1.5 "}) == 1.5
    assert parse_retry_after({"retry-after-ms": "250", "Retry-After": "9"}) == 0.25
    now = time.time()
    date = format_datetime(datetime.fromtimestamp(now, UTC) + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after({"Retry-After": date}, now=now) == pytest.approx(30, abs=1)
    past = format_datetime(datetime.fromtimestamp(now, UTC) - timedelta(hours=1), usegmt=True)
    assert parse_retry_after({"Retry-After": past}, now=now) == 0
    assert parse_retry_after({"Retry-After": "-5"}) == 0


@pytest.mark.parametrize("headers", [{}, {"Retry-After": "soon"}, {"Retry-After": "nan"}])
def test_retry_after_absent_or_unreadable_is_none(headers: dict[str, str]) -> None:
    assert parse_retry_after(headers) is None


@pytest.mark.parametrize(
    ("status", "code", "message", "expected", "retryable"),
    [
        (429, "rate_limit_exceeded", "slow down", ErrorCode.LLM_RATE_LIMITED, True),
        (500, None, "boom", ErrorCode.LLM_UNAVAILABLE, True),
        (503, None, "overloaded", ErrorCode.LLM_UNAVAILABLE, True),
        (408, None, "", ErrorCode.LLM_TIMEOUT, True),
        (400, "context_length_exceeded", "too long", ErrorCode.LLM_CONTEXT_OVERFLOW, False),
        (
            400,
            None,
            "This model's maximum context length is 8192 tokens",
            ErrorCode.LLM_CONTEXT_OVERFLOW,
            False,
        ),
        (413, None, "payload too large", ErrorCode.LLM_CONTEXT_OVERFLOW, False),
        (400, "invalid_request", "bad param", ErrorCode.LLM_UNAVAILABLE, False),
        (401, "invalid_api_key", "bad key", ErrorCode.LLM_UNAVAILABLE, False),
        (404, "model_not_found", "no model", ErrorCode.LLM_UNAVAILABLE, False),
    ],
)
def test_http_errors_map_to_error_codes(
    status: int, code: str | None, message: str, expected: ErrorCode, retryable: bool
) -> None:
    error = error_for_status(status, code=code, message=message, headers={"Retry-After": "3"})
    assert error.code is expected
    assert error.retryable is retryable
    assert message in error.message  # the provider's own short reason, for the item's error
    if expected is ErrorCode.LLM_RATE_LIMITED:
        assert error.retry_after_s == 3


def test_context_overflow_is_recognised_by_code_or_message() -> None:
    assert is_context_overflow("context_length_exceeded", "")
    assert is_context_overflow(None, "Input exceeds the context window of the model")
    assert not is_context_overflow("invalid_request_error", "temperature must be <= 2")


def test_llm_error_carries_its_code_message_and_spend() -> None:
    error = LLMError(ErrorCode.LLM_TIMEOUT, "stalled", retryable=True, attempts=2, output_tokens=7)
    assert str(error) == "stalled"
    assert (error.attempts, error.output_tokens, error.cost_usd) == (2, 7, 0.0)
    assert error.retry_after_s is None


# --- answers -------------------------------------------------------------------------------


def test_an_answer_is_parsed_and_checked() -> None:
    text = '```json\n{"title": "t", "items": [{"name": "a", "hours": 1}]}\n```'
    assert parse_answer(request(), text).title == "t"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"title": "t", "items": [{"name": "a", "ho', "not valid JSON"),
        ("Sure! here it is", "not valid JSON"),
        ('{"title": "t", "items": []}', "schema mismatch: items"),
        ('{"items": [{"name": "a", "hours": -1}]}', "schema mismatch: title"),
    ],
)
def test_invalid_answers_are_named_without_quoting_them(text: str, reason: str) -> None:
    with pytest.raises(InvalidAnswer) as caught:
        parse_answer(request(), text)
    assert reason in caught.value.reason
    assert "Sure!" not in caught.value.reason


def test_the_stage_check_makes_an_answer_invalid() -> None:
    def known_items(answer: Answer) -> None:
        unknown = [i.name for i in answer.items if i.name != "a"]
        if unknown:
            raise ValueError(f"unknown items: {unknown}")

    text = '{"title": "t", "items": [{"name": "b", "hours": 1}]}'
    with pytest.raises(InvalidAnswer, match=r"unknown items: \['b'\]"):
        parse_answer(request(validate=known_items), text)


def test_schema_names_are_sanitised_for_response_format() -> None:
    assert schema_name("Answer") == "Answer"
    assert schema_name("Answer[Story]") == "Answer_Story_"


def test_the_openai_provider_uses_the_stage_model() -> None:
    provider = OpenAIProvider(
        Settings(llm_base_url="http://127.0.0.1:9/v1", llm_stage_models={"epics": "gpt-4o"})
    )
    assert provider.model_for("epics") == "gpt-4o"
    assert provider.model_for("stories") == "gpt-4o-mini"


async def test_heartbeats_are_throttled_and_only_report_growth() -> None:
    ticks = Ticks()
    beat = Heartbeat(ticks, interval_s=60)
    await beat.tick(0)
    await beat.tick(5)
    await beat.tick(9)  # within the interval
    await beat.done(12)
    assert ticks.values == [5, 12]
