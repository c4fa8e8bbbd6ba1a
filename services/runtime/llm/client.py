"""LLMClient: the one way every stage calls an LLM (provider selection and the cache)."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable
from typing import Protocol

from opentelemetry import trace

from contracts.events import ErrorCode
from services.runtime import metrics
from services.runtime.fleet import CallRefused, FleetGate
from services.runtime.llm.answers import InvalidAnswer, check
from services.runtime.llm.cache import CachedAnswer, ResultCache, cache_key
from services.runtime.llm.errors import LLMError
from services.runtime.llm.offline import OfflineProvider
from services.runtime.llm.openai_provider import OpenAIProvider
from services.runtime.llm.request import LLMRequest, LLMResult, OnTokens, T
from services.runtime.settings import Settings
from services.runtime.tracing import TRACER

log = logging.getLogger(__name__)


class Provider(Protocol):
    name: str
    offline: bool

    def model_for(self, stage: str) -> str: ...

    async def context_tokens(self) -> int | None: ...

    async def generate(
        self, request: LLMRequest[T], on_tokens: OnTokens | None
    ) -> LLMResult[T]: ...

    async def aclose(self) -> None: ...


class LLMClient:
    """Structured output from an LLM, validated, within a hard deadline, paid for once.

    Results of a real provider are cached by (stage, prompt version, model, input hash,
    schema hash). A cached result comes back with ``cached=True``, the tokens, attempts and
    repairs of the call that produced it, ``cost_usd=0`` (nothing is paid now, so budgets and
    run usage do not count it twice) and ``duration_s`` of the lookup. ``on_tokens`` is not
    called for it: nothing streams. Offline drafts are not cached: they are free and cheap,
    and caching them would hide changes to the stage's draft code.
    """

    def __init__(self, provider: Provider, cache: ResultCache | None = None) -> None:
        self._provider = provider
        self._cache = cache

    @property
    def provider(self) -> str:
        return self._provider.name

    @property
    def offline(self) -> bool:
        return self._provider.offline

    def model_for(self, stage: str) -> str:
        return self._provider.model_for(stage)

    async def context_tokens(self) -> int | None:
        """The model's context in tokens, where the settings or the server say (a stage
        splits work that would not fit); None when unknown or offline."""
        return await self._provider.context_tokens()

    async def aclose(self) -> None:
        await self._provider.aclose()

    async def generate(
        self, request: LLMRequest[T], *, on_tokens: OnTokens | None = None
    ) -> LLMResult[T]:
        """The validated answer, or LLMError with one of DESIGN.md's codes.

        ``on_tokens(output_tokens_so_far)`` is awaited while the answer streams, at most about
        once a second, and once at the end; an exception it raises aborts the call and
        propagates unchanged (e.g. to stop on a cancelled run).
        """
        stage, model = request.stage, self._provider.model_for(request.stage)
        started = time.monotonic()
        in_flight = metrics.LLM_REQUESTS_IN_FLIGHT.labels(stage=stage)
        in_flight.inc()
        span = trace.get_tracer(TRACER).start_span(
            f"llm {stage}", attributes={"gen_ai.request.model": model, "cardflow.stage": stage}
        )
        try:
            with trace.use_span(span, end_on_exit=True, record_exception=False):
                result = await self._generate(request, on_tokens, model)
                span.set_attribute("gen_ai.usage.input_tokens", result.provenance.input_tokens)
                span.set_attribute("gen_ai.usage.output_tokens", result.provenance.output_tokens)
                span.set_attribute("cardflow.cached", result.provenance.cached)
        except LLMError as error:
            span.set_status(trace.Status(trace.StatusCode.ERROR, error.code.value))
            _count(stage, model, error.code.value, started, error.attempts)
            _count_usage(stage, model, error.input_tokens, error.output_tokens, error.cost_usd)
            if error.code is ErrorCode.LLM_RATE_LIMITED:
                metrics.LLM_RATE_LIMIT_WAITS.labels(source="provider").inc()
            raise
        except CallRefused as refused:
            _count(stage, model, refused.code.value, started, 0)
            raise
        finally:
            in_flight.dec()
        p = result.provenance
        if p.cached:
            _count(stage, model, "cached", started, 0)
        else:
            _count(stage, model, "ok", started, p.attempts)
            _count_usage(stage, model, p.input_tokens, p.output_tokens, p.cost_usd)
        return result

    async def _generate(
        self, request: LLMRequest[T], on_tokens: OnTokens | None, model: str
    ) -> LLMResult[T]:
        cache = None if self._provider.offline else self._cache
        key = ""
        if cache is not None:
            key = cache_key(
                request.stage, request.prompt_version, model, request.cache_input, request.schema()
            )
            hit = await self._lookup(cache, key, request)
            if hit is not None:
                return hit
        try:
            result = await self._provider.generate(request, on_tokens)
        except LLMError as error:
            log.warning(
                "llm call failed",
                extra={
                    "fields": {
                        "stage": request.stage,
                        "code": error.code.value,
                        "reason": error.message,
                        "retryable": error.retryable,
                        "attempts": error.attempts,
                    }
                },
            )
            raise
        _log_result(request, result)
        if cache is not None:
            await self._store(cache, key, result)
        return result

    async def _lookup(
        self, cache: ResultCache, key: str, request: LLMRequest[T]
    ) -> LLMResult[T] | None:
        started = time.monotonic()
        try:
            entry = await cache.get(key)
        except Exception:
            log.warning("llm cache unreadable, calling the provider", exc_info=True)
            return None
        if entry is None:
            return None
        try:
            output = check(request, request.output_model.model_validate_json(entry.output_json))
        except (InvalidAnswer, ValueError):
            # Stale for this request (its check depends on more than the cache input).
            log.warning("llm cache entry fails the request's checks, dropped")
            await _quietly(cache.delete(key))
            return None
        provenance = entry.provenance.model_copy(
            update={
                "cached": True,
                "cost_usd": 0.0,
                "duration_s": round(time.monotonic() - started, 3),
            }
        )
        result = LLMResult(output, provenance)
        _log_result(request, result)
        return result

    async def _store(self, cache: ResultCache, key: str, result: LLMResult[T]) -> None:
        entry = CachedAnswer(result.output.model_dump_json(), result.provenance)
        await _quietly(cache.put(key, entry))


def _count(stage: str, model: str, outcome: str, started: float, http_calls: int) -> None:
    metrics.LLM_REQUEST_DURATION.labels(stage=stage, model=model, outcome=outcome).observe(
        time.monotonic() - started
    )
    if http_calls:
        metrics.LLM_HTTP_CALLS.labels(stage=stage, model=model).inc(http_calls)


def _count_usage(
    stage: str, model: str, input_tokens: int, output_tokens: int, cost_usd: float
) -> None:
    metrics.LLM_TOKENS.labels(stage=stage, model=model, kind="input").inc(input_tokens)
    metrics.LLM_TOKENS.labels(stage=stage, model=model, kind="output").inc(output_tokens)
    metrics.LLM_COST.labels(stage=stage, model=model).inc(cost_usd)


async def _quietly(write: Awaitable[None]) -> None:
    """A cache write that fails costs a repeated call at worst: never the result."""
    try:
        await write
    except Exception:
        log.warning("llm cache write failed", exc_info=True)


def _log_result(request: LLMRequest[T], result: LLMResult[T]) -> None:
    p = result.provenance
    log.info(
        "llm call done",
        extra={
            "fields": {
                "stage": request.stage,
                "model": p.model,
                "cached": p.cached,
                "attempts": p.attempts,
                "repairs": p.repairs,
                "input_tokens": p.input_tokens,
                "output_tokens": p.output_tokens,
                "cost_usd": p.cost_usd,
                "duration_s": p.duration_s,
            }
        },
    )


def build_llm_client(
    settings: Settings, cache: ResultCache | None = None, gate: FleetGate | None = None
) -> LLMClient:
    """The openai provider when ``llm_base_url`` is set (every call through the fleet
    ``gate`` when given), else the offline provider."""
    provider: Provider = (
        OpenAIProvider(settings, gate=gate) if settings.llm_base_url else OfflineProvider(settings)
    )
    return LLMClient(provider, cache)
