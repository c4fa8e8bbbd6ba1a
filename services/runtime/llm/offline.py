"""The offline provider: the stage's own deterministic draft, no network, no cost.

Every result says ``offline=True`` in its provenance. With ``llm_offline_latency_s`` above 0
it behaves like a slow model, so progress can be watched: it waits that long, then "streams"
the draft at ``llm_offline_tokens_per_s``, reporting tokens so far as it goes.
"""

from __future__ import annotations

import asyncio
import time

from contracts.backlog import Provenance
from contracts.events import ErrorCode
from services.runtime.llm.answers import InvalidAnswer, check_draft
from services.runtime.llm.errors import LLMError
from services.runtime.llm.request import (
    LLMRequest,
    LLMResult,
    OnTokens,
    T,
    estimate_prompt_tokens,
    estimate_tokens,
)
from services.runtime.llm.spend import Heartbeat
from services.runtime.settings import Settings

OFFLINE = "offline"
_STEP_S = 1.0


class OfflineProvider:
    name = OFFLINE
    offline = True

    def __init__(self, settings: Settings) -> None:
        self._latency_s = settings.llm_offline_latency_s
        self._tokens_per_s = settings.llm_offline_tokens_per_s

    def model_for(self, stage: str) -> str:
        return OFFLINE

    async def context_tokens(self) -> int | None:
        return None

    async def aclose(self) -> None:
        return None

    async def generate(self, request: LLMRequest[T], on_tokens: OnTokens | None) -> LLMResult[T]:
        started = time.monotonic()
        try:
            output = check_draft(request, request.offline())
        except InvalidAnswer as invalid:
            # A bug in the stage's draft: the same input fails the same way every time.
            raise LLMError(
                ErrorCode.LLM_INVALID_OUTPUT,
                f"offline draft invalid: {invalid.reason}",
                retryable=False,
                attempts=1,
            ) from None
        tokens = estimate_tokens(output.model_dump_json())
        await self._simulate(tokens, Heartbeat(on_tokens))
        provenance = Provenance(
            provider=OFFLINE,
            model=OFFLINE,
            prompt_version=request.prompt_version,
            offline=True,
            input_tokens=estimate_prompt_tokens(request.messages),
            output_tokens=tokens,
            cost_usd=0.0,
            attempts=1,
            repairs=0,
            duration_s=round(time.monotonic() - started, 3),
        )
        return LLMResult(output, provenance)

    async def _simulate(self, tokens: int, heartbeat: Heartbeat) -> None:
        if self._latency_s > 0:
            await asyncio.sleep(self._latency_s)
            streaming_s = tokens / self._tokens_per_s
            loop = asyncio.get_running_loop()
            begin = loop.time()
            end = begin + streaming_s
            while (now := loop.time()) < end:
                await heartbeat.tick(int(tokens * (now - begin) / streaming_s))
                await asyncio.sleep(min(_STEP_S, end - now))
        await heartbeat.done(tokens)
