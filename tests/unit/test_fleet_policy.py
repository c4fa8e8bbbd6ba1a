"""Whether an LLM call may start: refusals, then the fleet's shared ceilings (pure)."""

from __future__ import annotations

from services.runtime.fleet import Ask, FleetState, Limits, Verdict, decide

LIMITS = Limits(max_in_flight=2, tokens_per_minute=1000)


def test_a_call_starts_when_there_is_room() -> None:
    assert decide(LIMITS, FleetState(1, 200), Ask(300, 0.01)) is Verdict.GRANT


def test_the_in_flight_ceiling_makes_a_call_wait() -> None:
    assert decide(LIMITS, FleetState(2, 0), Ask(10, 0.0)) is Verdict.WAIT


def test_the_token_window_makes_a_call_wait_but_never_starves_a_big_one() -> None:
    assert decide(LIMITS, FleetState(0, 900), Ask(200, 0.0)) is Verdict.WAIT
    assert decide(LIMITS, FleetState(0, 0), Ask(5000, 0.0)) is Verdict.GRANT


def test_zero_means_no_ceiling() -> None:
    assert decide(Limits(0, 0), FleetState(500, 10**9), Ask(10**6, 0.0)) is Verdict.GRANT


def test_a_cancelled_run_is_refused_even_with_room() -> None:
    state = FleetState(0, 0, run_cancelled=True)
    assert decide(LIMITS, state, Ask(10, 0.0)) is Verdict.CANCELLED


def test_the_budget_counts_spent_in_flight_and_the_next_call() -> None:
    state = FleetState(0, 0, run_spent_usd=0.6, run_reserved_usd=0.3)
    assert decide(LIMITS, state, Ask(10, 0.1, budget_usd=1.0)) is Verdict.GRANT
    # Fits once the calls in flight settle: wait for them.
    assert decide(LIMITS, state, Ask(10, 0.11, budget_usd=1.0)) is Verdict.WAIT
    assert decide(LIMITS, state, Ask(10, 0.41, budget_usd=1.0)) is Verdict.OVER_BUDGET
    # Over budget is refused even when the fleet is busy: waiting would not help.
    busy = FleetState(2, 0, run_spent_usd=1.0)
    assert decide(LIMITS, busy, Ask(10, 0.01, budget_usd=1.0)) is Verdict.OVER_BUDGET
