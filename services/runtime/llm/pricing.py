"""What an LLM call cost, from the configured price table."""

from __future__ import annotations

from collections.abc import Mapping

Prices = Mapping[str, tuple[float, float]]
"""model -> (USD per 1M input tokens, USD per 1M output tokens)."""


def price_for(model: str, prices: Prices) -> tuple[float, float] | None:
    """The model's prices: an exact entry, else the longest entry the name starts with
    followed by ``-`` (a dated snapshot such as gpt-4o-mini-2024-07-18 is gpt-4o-mini)."""
    if model in prices:
        return prices[model]
    bases = [name for name in prices if model.startswith(f"{name}-")]
    return prices[max(bases, key=len)] if bases else None


def cost_usd(model: str, input_tokens: int, output_tokens: int, prices: Prices) -> float:
    """USD for the tokens. A model missing from the table costs 0: the cost is unknown, not
    zero, so add its prices to ``llm_prices`` (CARDFLOW_LLM_PRICES) to have budgets count it."""
    price = price_for(model, prices)
    if price is None:
        return 0.0
    per_input, per_output = price
    return round((input_tokens * per_input + output_tokens * per_output) / 1_000_000, 8)
