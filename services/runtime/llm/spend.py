"""What one ``generate`` has spent so far, over its HTTP calls, and heartbeat throttling."""

from __future__ import annotations

import time
from dataclasses import dataclass

from contracts.events import ErrorCode
from services.runtime.llm.errors import LLMError
from services.runtime.llm.pricing import Prices, cost_usd
from services.runtime.llm.request import OnTokens


@dataclass
class Spend:
    model: str
    prices: Prices
    attempts: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0

    def add(self, input_tokens: int, output_tokens: int) -> None:
        self.input_tokens += input_tokens
        self.output_tokens += output_tokens
        self.cost_usd = cost_usd(self.model, self.input_tokens, self.output_tokens, self.prices)

    def charge(self, error: LLMError) -> LLMError:
        """The error, carrying what was spent (budgets count failed calls too)."""
        error.attempts = self.attempts
        error.input_tokens = self.input_tokens
        error.output_tokens = self.output_tokens
        error.cost_usd = self.cost_usd
        return error

    def error(
        self,
        code: ErrorCode,
        message: str,
        *,
        retryable: bool,
        retry_after_s: float | None = None,
    ) -> LLMError:
        return self.charge(
            LLMError(code, message, retryable=retryable, retry_after_s=retry_after_s)
        )


class Heartbeat:
    """Calls ``on_tokens`` at most once per ``interval_s`` while streaming, and at the end."""

    def __init__(self, on_tokens: OnTokens | None, interval_s: float = 1.0) -> None:
        self._on_tokens = on_tokens
        self._interval_s = interval_s
        self._last: float | None = None
        self._reported = 0

    async def tick(self, tokens: int) -> None:
        """Reports a grown count, unless the last report is less than interval_s old."""
        if self._on_tokens is None or tokens <= self._reported:
            return
        now = time.monotonic()
        if self._last is None or now - self._last >= self._interval_s:
            self._last = now
            self._reported = tokens
            await self._on_tokens(tokens)

    async def done(self, tokens: int) -> None:
        if self._on_tokens is not None:
            await self._on_tokens(tokens)
