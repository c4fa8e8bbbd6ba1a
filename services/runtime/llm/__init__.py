"""The one LLM client every stage uses: providers, deadlines, repair, errors, cost, cache.

No business rules live here: a stage builds its messages, names its output model and
supplies its offline draft in an ``LLMRequest``; ``LLMClient.generate`` returns the validated
output with its provenance, or raises ``LLMError`` carrying one of DESIGN.md's error codes.
"""

from services.runtime.llm.cache import (
    CachedAnswer,
    MemoryResultCache,
    ResultCache,
    SqlResultCache,
    cache_key,
)
from services.runtime.llm.client import LLMClient, Provider, build_llm_client
from services.runtime.llm.errors import LLMError, error_for_status, parse_retry_after
from services.runtime.llm.offline import OfflineProvider
from services.runtime.llm.openai_provider import OpenAIProvider
from services.runtime.llm.pricing import cost_usd, price_for
from services.runtime.llm.request import LLMRequest, LLMResult, OnTokens, estimate_tokens

__all__ = [
    "CachedAnswer",
    "LLMClient",
    "LLMError",
    "LLMRequest",
    "LLMResult",
    "MemoryResultCache",
    "OfflineProvider",
    "OnTokens",
    "OpenAIProvider",
    "Provider",
    "ResultCache",
    "SqlResultCache",
    "build_llm_client",
    "cache_key",
    "cost_usd",
    "error_for_status",
    "estimate_tokens",
    "parse_retry_after",
    "price_for",
]
