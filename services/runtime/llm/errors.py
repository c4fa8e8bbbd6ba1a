"""LLMError, and the mapping of provider failures onto DESIGN.md's error codes."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from email.utils import parsedate_to_datetime

from contracts.events import ErrorCode

# How real servers say it (bodies recorded live from llama.cpp's server, or taken from each
# project's source: tests/unit/test_llm_provider_errors.py names where each came from).
_OVERFLOW_CODES = frozenset(
    (
        "context_length_exceeded",  # OpenAI, Azure OpenAI
        "exceed_context_size_error",  # llama.cpp (as the error's type; its code is 400)
        "string_above_max_length",
        "contextwindowexceedederror",  # LiteLLM's exception name
    )
)
_OVERFLOW_HINTS = (
    "context length",  # OpenAI, vLLM: "This model's maximum context length is ..."
    "context_length",
    "context window",  # LiteLLM: "ContextWindowExceededError"
    "contextwindowexceeded",
    "context size",  # llama.cpp: "exceeds the available context size"
    "maximum context",
    "prompt is too long",
    "input is too long",
    "too many input tokens",
    "maximum input length",
    "reduce the length of the messages",
    "maximum model length",  # vLLM: "... is longer than the maximum model length of 32768"
    "max_model_len",  # vLLM: "max_tokens=40000 cannot be greater than max_model_len=32768"
)
_FILTER_CODES = frozenset(
    (
        "content_filter",  # Azure OpenAI
        "content_policy_violation",  # OpenAI images / LiteLLM
        "contentpolicyviolationerror",  # LiteLLM's exception name
        "responsibleaipolicyviolation",  # Azure's innererror code
    )
)
_FILTER_HINTS = (
    "content management policy",  # Azure OpenAI
    "content policy",
    "content_policy",
    "contentpolicyviolation",  # LiteLLM's exception name, in its messages
    "usage policy",  # OpenAI: "your prompt was flagged as potentially violating our usage policy"
    "safety system",  # OpenAI: "rejected as a result of our safety system"
)
_QUOTA_CODES = frozenset(("insufficient_quota", "billing_hard_limit_reached"))
_QUOTA_HINTS = ("exceeded your current quota", "insufficient_quota", "billing")
_OVERLOAD_CODES = frozenset(
    ("overloaded", "overloaded_error", "server_error", "unavailable_error", "service_unavailable")
)
REASON_CHARS = 160
"""The provider's own reason, as much as an item's error message shows of it."""
_ECHO_WINDOW = 24
"""A reason sharing this many characters in a row with the prompt is said without its text."""


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
    # A LiteLLM proxy passes the upstream provider's headers on with an llm_provider- prefix.
    millis = _number(lowered.get("retry-after-ms") or lowered.get("llm_provider-retry-after-ms"))
    if millis is not None:
        return max(0.0, millis / 1000)
    value = lowered.get("retry-after") or lowered.get("llm_provider-retry-after")
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


def _folded(*values: object) -> list[str]:
    return [str(v).strip().lower() for v in values if v is not None and str(v).strip()]


def _names_or_says(
    codes: frozenset[str], hints: tuple[str, ...], code: object, message: str, kind: object
) -> bool:
    """The provider's code or type is one of ``codes``, or its message holds a hint."""
    if any(name in codes for name in _folded(code, kind)):
        return True
    lowered = message[:2000].lower()
    return any(hint in lowered for hint in hints)


def is_context_overflow(code: object, message: str, kind: object = None) -> bool:
    """The provider says the prompt (with the output asked for) does not fit the context."""
    return _names_or_says(_OVERFLOW_CODES, _OVERFLOW_HINTS, code, message, kind)


def is_content_filter(code: object, message: str, kind: object = None) -> bool:
    return _names_or_says(_FILTER_CODES, _FILTER_HINTS, code, message, kind)


def _is_quota(code: object, message: str, kind: object) -> bool:
    return _names_or_says(_QUOTA_CODES, _QUOTA_HINTS, code, message, kind)


def provider_reason(message: str, prompt: Iterable[str] = ()) -> str:
    """The provider's message as an item may show it: one line, at most ``REASON_CHARS``, and
    empty when it repeats the prompt (a validation error quoting the input): the error message
    never carries card text."""
    line = " ".join(message[: REASON_CHARS * 4].split())
    if len(line) > REASON_CHARS:
        line = line[: REASON_CHARS - 1].rstrip() + "…"
    if len(line) >= _ECHO_WINDOW:
        texts = [text for text in prompt if text]
        for start in range(0, len(line) - _ECHO_WINDOW + 1):
            window = line[start : start + _ECHO_WINDOW]
            if any(window in " ".join(text.split()) for text in texts):
                return ""
    return line


def _said(status: int, code: object, kind: object, reason: str) -> str:
    """ "400 exceed_context_size_error: request (1524 tokens) exceeds ..." """
    names = [n for n in dict.fromkeys(_folded(kind, code)) if n != str(status)]
    head = " ".join([str(status), *names[:1]])
    return f"{head}: {reason}" if reason else head


def error_for_status(
    status: int,
    *,
    code: object = None,
    message: str = "",
    headers: Mapping[str, str] | None = None,
    kind: object = None,
    prompt: Iterable[str] = (),
) -> LLMError:
    """The LLMError for an HTTP error answer of the provider: ``code``, ``kind`` (the error's
    ``type``) and ``message`` as the provider's body gives them (any of them may be missing,
    and ``code`` may be a number: llama.cpp and vLLM put the HTTP status there)."""
    said = _said(status, code, kind, provider_reason(message, prompt))
    retry_after = parse_retry_after(headers or {})
    # Ollama answers an overflow with a 500 too: a retry would fail the same way.
    if status == 413 or (400 <= status < 600 and is_context_overflow(code, message, kind)):
        return LLMError(
            ErrorCode.LLM_CONTEXT_OVERFLOW,
            f"the input exceeds the model's context length ({said})",
            retryable=False,
        )
    if 400 <= status < 500 and is_content_filter(code, message, kind):
        return LLMError(
            ErrorCode.LLM_REFUSED,
            f"the provider's content filter refused ({said})",
            retryable=False,
        )
    if status == 429:
        if _is_quota(code, message, kind):
            return LLMError(
                ErrorCode.LLM_RATE_LIMITED,
                f"the LLM provider's quota is used up ({said})",
                retryable=False,
            )
        return LLMError(
            ErrorCode.LLM_RATE_LIMITED,
            f"rate limited by the LLM provider ({said})",
            retryable=True,
            retry_after_s=retry_after,
        )
    if status == 408:
        return LLMError(
            ErrorCode.LLM_TIMEOUT, f"the LLM provider timed out ({said})", retryable=True
        )
    if status >= 500 or status == 409 or any(n in _OVERLOAD_CODES for n in _folded(code, kind)):
        return LLMError(
            ErrorCode.LLM_UNAVAILABLE,
            f"the LLM provider failed ({said})",
            retryable=True,
            retry_after_s=retry_after,
        )
    return LLMError(
        ErrorCode.LLM_UNAVAILABLE,
        f"the LLM provider rejected the request ({said})",
        retryable=False,
    )


def error_mid_stream(
    *, code: object = None, message: str = "", kind: object = None, prompt: Iterable[str] = ()
) -> LLMError:
    """The LLMError for an error event inside a streamed 200 answer (vLLM and LiteLLM send
    ``data: {"error": {...}}``): no status to go by, so the code, type and message decide."""
    reason = provider_reason(message, prompt)
    said = f"{kind or code or 'error'}: {reason}" if reason else f"{kind or 'error'}"
    if is_context_overflow(code, message, kind):
        return LLMError(
            ErrorCode.LLM_CONTEXT_OVERFLOW,
            f"the input exceeds the model's context length ({said})",
            retryable=False,
        )
    if is_content_filter(code, message, kind):
        return LLMError(
            ErrorCode.LLM_REFUSED,
            f"the provider's content filter refused ({said})",
            retryable=False,
        )
    return LLMError(
        ErrorCode.LLM_UNAVAILABLE, f"the LLM provider failed mid-answer ({said})", retryable=True
    )
