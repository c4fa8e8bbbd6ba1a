"""LLMError, and the mapping of provider failures onto DESIGN.md's error codes."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

from contracts.events import ErrorCode

_CONTEXT_HINTS = ("context length", "context_length", "context window", "maximum context")


class LLMError(Exception):
    """A failed LLM call, as one of DESIGN.md's error codes.

    ``message`` is short and never holds prompt or answer text. The usage fields count what
    the failed call spent anyway (HTTP calls made, tokens, cost), so budgets see it.
    """

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        retryable: bool,
        retry_after_s: float | None = None,
        attempts: int = 0,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cost_usd: float = 0.0,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable
        self.retry_after_s = retry_after_s
        self.attempts = attempts
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self.cost_usd = cost_usd

    def __repr__(self) -> str:
        return f"LLMError({self.code.value!r}, {self.message!r}, retryable={self.retryable})"


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms``, or ``Retry-After`` as seconds or an HTTP date.

    None when absent or unreadable; never negative. Not capped: the retry owner decides.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    millis = _number(lowered.get("retry-after-ms"))
    if millis is not None:
        return max(0.0, millis / 1000)
    value = lowered.get("retry-after")
    if value is None:
        return None
    seconds = _number(value)
    if seconds is not None:
        return max(0.0, seconds)
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def is_context_overflow(code: str | None, message: str) -> bool:
    if code == "context_length_exceeded":
        return True
    lowered = message.lower()
    return any(hint in lowered for hint in _CONTEXT_HINTS)


def error_for_status(
    status: int,
    *,
    code: str | None = None,
    message: str = "",
    headers: Mapping[str, str] | None = None,
) -> LLMError:
    """The LLMError for an HTTP error answer of the provider."""
    if status == 429:
        return LLMError(
            ErrorCode.LLM_RATE_LIMITED,
            "rate limited by the LLM provider (429)",
            retryable=True,
            retry_after_s=parse_retry_after(headers or {}),
        )
    if status == 413 or (400 <= status < 500 and is_context_overflow(code, message)):
        return LLMError(
            ErrorCode.LLM_CONTEXT_OVERFLOW,
            f"the input exceeds the model's context length ({status})",
            retryable=False,
        )
    if status == 408:
        return LLMError(ErrorCode.LLM_TIMEOUT, "the LLM provider timed out (408)", retryable=True)
    if status >= 500 or status == 409:
        return LLMError(
            ErrorCode.LLM_UNAVAILABLE,
            f"the LLM provider failed ({status})",
            retryable=True,
            retry_after_s=parse_retry_after(headers or {}),
        )
    detail = f": {code}" if code else ""
    return LLMError(
        ErrorCode.LLM_UNAVAILABLE,
        f"the LLM provider rejected the request ({status}{detail})",
        retryable=False,
    )
