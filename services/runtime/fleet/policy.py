"""Pure: whether an LLM call may start now, given what the whole fleet is doing."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class Limits:
    max_in_flight: int
    """LLM calls in flight across every replica of every service; 0: no ceiling."""
    tokens_per_minute: int
    """Tokens (estimated at the start of a call, corrected at its end) in any 60 s; 0: none."""


@dataclass(frozen=True, slots=True)
class FleetState:
    in_flight: int
    tokens_last_minute: int
    run_spent_usd: float = 0.0
    run_reserved_usd: float = 0.0
    run_cancelled: bool = False


@dataclass(frozen=True, slots=True)
class Ask:
    estimated_tokens: int
    estimated_cost_usd: float
    budget_usd: float | None = None


class Verdict(StrEnum):
    GRANT = "grant"
    WAIT = "wait"
    CANCELLED = "cancelled"
    OVER_BUDGET = "over_budget"


def decide(limits: Limits, state: FleetState, ask: Ask) -> Verdict:
    """Refusals first (they will not change by waiting), then the shared ceilings.

    The budget counts what was spent, what calls in flight may still spend, and this call's
    estimate: a run stops before it would spend past its budget, not after. A call that fits
    only once the calls in flight settle waits for them.
    """
    if state.run_cancelled:
        return Verdict.CANCELLED
    if ask.budget_usd is not None:
        if state.run_spent_usd + ask.estimated_cost_usd > ask.budget_usd:
            return Verdict.OVER_BUDGET
        # Calls in flight hold their estimate until they settle (usually for less): wait
        # for them rather than refuse on a sum that is about to shrink.
        committed = state.run_spent_usd + state.run_reserved_usd + ask.estimated_cost_usd
        if committed > ask.budget_usd:
            return Verdict.WAIT
    if limits.max_in_flight and state.in_flight >= limits.max_in_flight:
        return Verdict.WAIT
    # A call bigger than the whole allowance still runs, alone, once the window is empty:
    # refusing it forever would fail the item for no reason the user could fix.
    over = state.tokens_last_minute + ask.estimated_tokens > limits.tokens_per_minute
    if limits.tokens_per_minute and state.tokens_last_minute > 0 and over:
        return Verdict.WAIT
    return Verdict.GRANT
