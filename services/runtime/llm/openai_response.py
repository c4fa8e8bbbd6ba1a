"""One answer of an OpenAI-compatible chat completions endpoint, read: streamed (with a
first-token and an idle deadline, heartbeats as tokens arrive) or whole, its usage charged to
the call's :class:`Spend` (an estimate for a call given up on); an error status read into an
:class:`LLMError`."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, cast

import openai
from openai import AsyncOpenAI

from contracts.events import ErrorCode
from services.runtime.llm.errors import LLMError, error_for_status
from services.runtime.llm.request import estimate_prompt_tokens, estimate_tokens
from services.runtime.llm.spend import Heartbeat, Spend
from services.runtime.settings import Settings


@dataclass
class Answer:
    text: str
    finish_reason: str | None
    refusal: str | None


async def read_stream(
    client: AsyncOpenAI,
    settings: Settings,
    params: dict[str, Any],
    messages: list[dict[str, str]],
    spend: Spend,
    heartbeat: Heartbeat,
) -> Answer:
    """The answer streamed: the first token within ``llm_first_token_timeout_s``, then no gap
    longer than ``llm_stream_idle_timeout_s``; a heartbeat per chunk with the tokens so far.
    The total deadline is the caller's (its ``TimeoutError`` passes through)."""
    loop = asyncio.get_running_loop()
    first_by = loop.time() + settings.llm_first_token_timeout_s
    parts: list[str] = []
    refusal: list[str] = []
    finish: str | None = None
    usage: tuple[int, int] | None = None
    received = False
    chars = 0
    stream = None
    try:
        waiting = asyncio.timeout_at(first_by)
        async with waiting:
            stream = await client.chat.completions.create(
                **params, stream=True, stream_options={"include_usage": True}
            )
        while True:
            waiting = asyncio.timeout_at(
                loop.time() + settings.llm_stream_idle_timeout_s if received else first_by
            )
            try:
                async with waiting:
                    chunk = await anext(stream)
            except StopAsyncIteration:
                break
            received = True
            if chunk.usage is not None:
                usage = (chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
            for choice in chunk.choices:
                delta = choice.delta
                if delta.content:
                    parts.append(delta.content)
                    chars += len(delta.content)
                if delta.refusal:
                    refusal.append(delta.refusal)
                if choice.finish_reason:
                    finish = choice.finish_reason
            await heartbeat.tick(spend.output_tokens + (chars + 3) // 4)
    except TimeoutError:
        if not waiting.expired():
            raise  # the total deadline: handled by generate
        spend.add(estimate_prompt_tokens(messages), (chars + 3) // 4)
        if received:
            message = f"the answer stalled for {settings.llm_stream_idle_timeout_s:g} s"
        else:
            message = f"no answer within {settings.llm_first_token_timeout_s:g} s"
        raise spend.error(ErrorCode.LLM_TIMEOUT, message, retryable=True) from None
    except BaseException as error:
        charge_abandoned(spend, messages, chars, error, opened=stream is not None)
        raise
    finally:
        if stream is not None:
            await asyncio.shield(stream.close())
    text = "".join(parts)
    if usage is None:
        usage = (estimate_prompt_tokens(messages), estimate_tokens(text))
    spend.add(*usage)
    return Answer(text, finish, "".join(refusal) or None)


async def read_completion(
    client: AsyncOpenAI, params: dict[str, Any], messages: list[dict[str, str]], spend: Spend
) -> Answer:
    """The answer in one piece, its usage charged (estimated when the server gives none)."""
    try:
        completion = await client.chat.completions.create(**params, stream=False)
    except BaseException as error:
        charge_abandoned(spend, messages, 0, error, opened=False)
        raise
    choice = completion.choices[0] if completion.choices else None
    text = (choice.message.content or "") if choice else ""
    if completion.usage is not None:
        spend.add(completion.usage.prompt_tokens, completion.usage.completion_tokens)
    else:
        spend.add(estimate_prompt_tokens(messages), estimate_tokens(text))
    return Answer(
        text,
        choice.finish_reason if choice else None,
        (choice.message.refusal or None) if choice else None,
    )


def charge_abandoned(
    spend: Spend, messages: list[dict[str, str]], chars: int, error: BaseException, *, opened: bool
) -> None:
    """A call given up on (timeout, cancel, broken stream) was likely billed for the prompt
    and what streamed: count an estimate, so budgets see it. An error answer, or no
    connection at all, cost nothing."""
    if isinstance(error, openai.APIStatusError):
        return
    if (
        not opened
        and isinstance(error, openai.APIConnectionError)
        and not isinstance(error, openai.APITimeoutError)
    ):
        return
    spend.add(estimate_prompt_tokens(messages), (chars + 3) // 4)


def status_error(error: openai.APIStatusError, messages: list[dict[str, str]]) -> LLMError:
    """The provider's body as the ``openai`` client hands it over: the inner ``error`` object
    when there is one (OpenAI, llama.cpp, vLLM, Ollama, LiteLLM), else the whole body (vLLM's
    older ``{"object": "error", ...}``), else nothing readable."""
    body = error.body
    fields = body.get("error", body) if isinstance(body, dict) else body
    if isinstance(fields, str):  # vLLM's 401: {"error": "Unauthorized"}
        fields = {"message": fields}
    if not isinstance(fields, dict):
        fields = {}
    message = fields.get("message")
    inner = fields.get("innererror")
    inner_code = inner.get("code") if isinstance(inner, dict) else None
    return error_for_status(
        error.status_code,
        code=fields.get("code", error.code) or inner_code,
        kind=fields.get("type") or inner_code,
        message=str(message if isinstance(message, str) else ""),
        headers=cast(Any, error.response.headers),
        prompt=[m["content"] for m in messages],
    )
