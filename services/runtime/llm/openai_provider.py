"""Any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, llama.cpp server, a proxy).

One ``generate`` is at most two HTTP calls (the answer, and one repair re-ask when it is
invalid), all inside one hard deadline (``llm_timeout_s``). The ``openai`` package's own
retries are off (``max_retries=0``): the work queue is the one owner of retries, and gets an
LLMError saying whether and when to retry.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import openai
from openai import AsyncOpenAI

from contracts.backlog import Provenance
from contracts.events import ErrorCode
from services.runtime.fleet import FleetGate, current_scope
from services.runtime.llm.answers import InvalidAnswer, parse_answer
from services.runtime.llm.context import discover_context
from services.runtime.llm.errors import LLMError, error_mid_stream
from services.runtime.llm.openai_response import (
    Answer,
    read_completion,
    read_stream,
    status_error,
)
from services.runtime.llm.pricing import cost_usd
from services.runtime.llm.request import (
    LLMRequest,
    LLMResult,
    OnTokens,
    T,
    estimate_prompt_tokens,
)
from services.runtime.llm.spend import Heartbeat, Spend
from services.runtime.settings import Settings

log = logging.getLogger(__name__)

REPAIR_INSTRUCTION = (
    "Your previous answer was not usable: {reason}. Reply again with the corrected JSON only, "
    "matching the required schema: no prose, no Markdown fence."
)
TRUNCATED_INSTRUCTION = (
    "Your previous answer was not usable: it was cut off at the output limit of {limit} "
    "tokens. Answer again, shorter: JSON only, matching the required schema, each text brief, "
    "nothing repeated."
)
REPAIR_ECHO_CHARS = 6000
"""An invalid answer longer than this is not sent back with its repair re-ask."""
MIN_ANSWER_TOKENS = 256
"""Room for less than this (or the asked limit, when smaller) beside the prompt in the model's
context: the call is not sent."""


class OpenAIProvider:
    name = "openai"
    offline = False

    def __init__(
        self,
        settings: Settings,
        client: AsyncOpenAI | None = None,
        *,
        gate: FleetGate | None = None,
    ) -> None:
        self._settings = settings
        self._client = client or make_openai_client(settings)
        self._gate = gate
        self._context: int | None = settings.llm_context_tokens or None
        self._context_read = bool(settings.llm_context_tokens) or not settings.llm_base_url
        self._context_lock = asyncio.Lock()

    async def context_tokens(self) -> int | None:
        """The model's context: the setting, else what the server says (asked once)."""
        if self._context_read:
            return self._context
        async with self._context_lock:
            if not self._context_read:
                key = self._settings.llm_api_key
                self._context = await discover_context(
                    self._settings.llm_base_url or "",
                    self._settings.llm_model,
                    key.get_secret_value() if key else None,
                )
                self._context_read = True
        return self._context

    def model_for(self, stage: str) -> str:
        return self._settings.llm_stage_models.get(stage, self._settings.llm_model)

    async def aclose(self) -> None:
        await self._client.close()

    async def generate(self, request: LLMRequest[T], on_tokens: OnTokens | None) -> LLMResult[T]:
        settings = self._settings
        model = self.model_for(request.stage)
        spend = Spend(model, settings.llm_prices)
        heartbeat = Heartbeat(on_tokens)
        messages = list(request.messages)
        started = time.monotonic()
        repairs = 0
        context = await self.context_tokens()
        try:
            # Scheduled once the first call has its fleet slot: waiting for room in the
            # fleet's ceiling is not the provider being slow.
            async with asyncio.timeout(None) as deadline:
                limit = _answer_room(request, messages, context)
                if limit is None:
                    raise spend.error(
                        ErrorCode.LLM_CONTEXT_OVERFLOW,
                        f"the prompt (about {estimate_prompt_tokens(messages)} tokens) leaves no "
                        f"room for an answer in the model's context of {context} tokens",
                        retryable=False,
                    )
                answer = await self._ask(
                    request, model, messages, spend, heartbeat, deadline, limit
                )
                try:
                    output = self._accept(request, answer, spend, limit)
                except InvalidAnswer as invalid:
                    repairs = 1
                    log.info(
                        "llm answer invalid, asking once for a repair",
                        extra={"fields": {"stage": request.stage, "reason": invalid.reason}},
                    )
                    messages += _repair(invalid, answer.text, limit)
                    limit = _answer_room(request, messages, context)
                    if limit is None:
                        raise spend.error(
                            ErrorCode.LLM_INVALID_OUTPUT,
                            f"invalid answer ({invalid.reason}), and no room in the model's "
                            "context for a repair re-ask",
                            retryable=False,
                        ) from None
                    answer = await self._ask(
                        request, model, messages, spend, heartbeat, deadline, limit
                    )
                    try:
                        output = self._accept(request, answer, spend, limit)
                    except InvalidAnswer as again:
                        raise spend.error(
                            ErrorCode.LLM_INVALID_OUTPUT,
                            f"invalid answer, also after one repair: {again.reason}",
                            retryable=False,
                        ) from None
        except TimeoutError:
            raise spend.error(
                ErrorCode.LLM_TIMEOUT,
                f"no valid answer within the {settings.llm_timeout_s:g} s deadline",
                retryable=True,
            ) from None
        await heartbeat.done(spend.output_tokens)
        provenance = Provenance(
            provider=self.name,
            model=model,
            prompt_version=request.prompt_version,
            offline=False,
            input_tokens=spend.input_tokens,
            output_tokens=spend.output_tokens,
            cost_usd=spend.cost_usd,
            attempts=spend.attempts,
            repairs=repairs,
            duration_s=round(time.monotonic() - started, 3),
        )
        return LLMResult(output, provenance)

    def _accept(self, request: LLMRequest[T], answer: Answer, spend: Spend, limit: int) -> T:
        if answer.refusal or answer.finish_reason == "content_filter":
            raise spend.error(ErrorCode.LLM_REFUSED, "the model refused to answer", retryable=False)
        if answer.finish_reason == "length":
            raise InvalidAnswer(
                f"cut off at the output limit of {limit} tokens (truncated)", truncated=True
            )
        return parse_answer(request, answer.text)

    async def _ask(
        self,
        request: LLMRequest[T],
        model: str,
        messages: list[dict[str, str]],
        spend: Spend,
        heartbeat: Heartbeat,
        deadline: asyncio.Timeout,
        limit: int,
    ) -> Answer:
        async with self._slot(request, model, messages, spend, deadline, limit):
            return await self._call(request, model, messages, spend, heartbeat, limit)

    @asynccontextmanager
    async def _slot(
        self,
        request: LLMRequest[T],
        model: str,
        messages: list[dict[str, str]],
        spend: Spend,
        deadline: asyncio.Timeout,
        limit: int,
    ) -> AsyncIterator[None]:
        """Each HTTP call (a repair re-ask too) takes a slot of the fleet gate, which refuses
        it once the run is cancelled or would go over its budget."""
        if self._gate is None:
            _start(deadline, self._settings.llm_timeout_s)
            yield
            return
        prompt = estimate_prompt_tokens(messages)
        answer = limit
        estimate = cost_usd(model, prompt, answer, self._settings.llm_prices)
        async with self._gate.slot(current_scope(), prompt + answer, estimate) as slot:
            _start(deadline, self._settings.llm_timeout_s)
            tokens, cost = spend.input_tokens + spend.output_tokens, spend.cost_usd
            try:
                yield
            except LLMError:
                slot.settle(
                    spend.input_tokens + spend.output_tokens - tokens, spend.cost_usd - cost
                )
                raise
            slot.settle(spend.input_tokens + spend.output_tokens - tokens, spend.cost_usd - cost)

    async def _call(
        self,
        request: LLMRequest[T],
        model: str,
        messages: list[dict[str, str]],
        spend: Spend,
        heartbeat: Heartbeat,
        limit: int,
    ) -> Answer:
        spend.attempts += 1
        params: dict[str, Any] = {
            "model": model,
            "messages": messages,
            "temperature": self._settings.llm_temperature,
            "max_tokens": limit,
            "response_format": {
                "type": "json_schema",
                "json_schema": {
                    "name": schema_name(request.output_model.__name__),
                    "schema": request.schema(),
                    "strict": False,
                },
            },
        }
        if self._settings.llm_seed is not None:
            params["seed"] = self._settings.llm_seed
        try:
            if self._settings.llm_stream:
                return await read_stream(
                    self._client, self._settings, params, messages, spend, heartbeat
                )
            return await read_completion(self._client, params, messages, spend)
        except openai.APIStatusError as error:
            raise spend.charge(status_error(error, messages)) from None
        except openai.APITimeoutError:
            raise spend.error(
                ErrorCode.LLM_TIMEOUT, "the LLM provider connection timed out", retryable=True
            ) from None
        except openai.APIConnectionError:
            raise spend.error(
                ErrorCode.LLM_UNAVAILABLE, "could not reach the LLM provider", retryable=True
            ) from None
        except openai.APIError as error:  # an error event in the middle of a stream
            prompt = [m["content"] for m in messages]
            raise spend.charge(
                error_mid_stream(
                    code=error.code,
                    message=error.message,
                    kind=getattr(error, "type", None),
                    prompt=prompt,
                )
            ) from None


def _answer_room(
    request: LLMRequest[Any], messages: list[dict[str, str]], context: int | None
) -> int | None:
    """The output limit of the next call: the request's, cut to what the model's context has
    left beside the prompt; None when that is too little to answer in."""
    if context is None:
        return request.max_output_tokens
    room = context - estimate_prompt_tokens(messages)
    if room < min(MIN_ANSWER_TOKENS, request.max_output_tokens):
        return None
    return min(request.max_output_tokens, room)


def _repair(invalid: InvalidAnswer, answer: str, limit: int) -> list[dict[str, str]]:
    """The re-ask after an invalid answer. A cut-off answer is not sent back (it fills the
    context with what the model should not repeat), nor a very long one; a short invalid
    answer is, so the model can mend it."""
    if invalid.truncated:
        return [{"role": "user", "content": TRUNCATED_INSTRUCTION.format(limit=limit)}]
    instruction = {"role": "user", "content": REPAIR_INSTRUCTION.format(reason=invalid.reason)}
    if len(answer) > REPAIR_ECHO_CHARS:
        return [instruction]
    return [{"role": "assistant", "content": answer}, instruction]


def make_openai_client(settings: Settings) -> AsyncOpenAI:
    """``max_retries=0``: the work queue owns retries. The HTTP timeout is per read, so it is
    only a backstop; ``generate`` enforces the total deadline itself."""
    total = settings.llm_timeout_s
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else "unused"
    return AsyncOpenAI(
        base_url=settings.llm_base_url,
        api_key=key,
        max_retries=0,
        timeout=openai.Timeout(total + 5, connect=min(10.0, total)),
    )


def schema_name(name: str) -> str:
    """response_format names allow letters, digits, _ and - (64 at most)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)[:64] or "output"


def _start(deadline: asyncio.Timeout, seconds: float) -> None:
    if deadline.when() is None:
        deadline.reschedule(asyncio.get_running_loop().time() + seconds)
