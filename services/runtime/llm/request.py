"""What a stage asks of the LLM client, and what it gets back."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from contracts.backlog import Provenance

T = TypeVar("T", bound=BaseModel)

OnTokens = Callable[[int], Awaitable[None]]
"""``on_tokens(output_tokens_so_far)``: called while an answer streams (progress heartbeats)."""


@dataclass(frozen=True, kw_only=True)
class LLMRequest(Generic[T]):
    """One structured-output call, fully described by the stage that makes it.

    The client adds no business rules: the stage builds ``messages`` (fencing untrusted text),
    names the output model, and supplies the offline draft and any semantic check.
    """

    stage: str
    prompt_version: str
    messages: list[dict[str, str]]
    output_model: type[T]
    offline: Callable[[], T]
    """Deterministic draft the offline provider returns (no endpoint configured)."""
    cache_input: str
    """Canonical text of everything the answer depends on besides the prompt version and the
    model (e.g. the card text and the options): its hash is the cache key's input part."""
    json_schema: dict[str, Any] | None = None
    """Schema sent as ``response_format``; default ``output_model.model_json_schema()``. An
    override may narrow it (e.g. enums of the requirement ids that exist)."""
    max_output_tokens: int = 4000
    validate: Callable[[T], None] | None = field(default=None)
    """Extra semantic check; raising ValueError makes the answer invalid (repair, then
    ``llm_invalid_output``). The override schema is *not* enforced locally: check here."""

    def schema(self) -> dict[str, Any]:
        return (
            self.json_schema
            if self.json_schema is not None
            else self.output_model.model_json_schema()
        )


@dataclass(frozen=True, slots=True)
class LLMResult(Generic[T]):
    output: T
    provenance: Provenance


_DIGITS = "0123456789"


def estimate_tokens(text: str) -> int:
    """Token count when the server reports none, and to size prompts before sending: other
    ASCII characters at four a token, but each digit and each non-ASCII character a token
    of its own (tokenizers such as Gemma's and Llama's split numbers into digits, and most
    spend a token or more on a CJK character). Measured against Gemma 3's tokenizer on a
    prompt full of numbers: 1,675 real, 1,748 estimated (characters / 4 alone: 1,606)."""
    digits = sum(map(text.count, _DIGITS))
    other = len(text) - len(text.encode("ascii", "ignore"))
    return (len(text) - digits - other + 3) // 4 + digits + other


def estimate_prompt_tokens(messages: list[dict[str, str]]) -> int:
    return estimate_tokens("".join(m.get("content", "") for m in messages))
