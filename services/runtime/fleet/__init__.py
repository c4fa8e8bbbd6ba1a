"""Limits shared by the whole fleet: LLM calls in flight, tokens per minute, a run's budget
and its cancellation, kept in one database every service reaches."""

from services.runtime.fleet.gate import CallRefused, FleetGate, Slot
from services.runtime.fleet.policy import Ask, FleetState, Limits, Verdict, decide
from services.runtime.fleet.scope import CallScope, call_scope, current_scope
from services.runtime.fleet.setup import FLEET_HISTORY, Fleet, build_fleet

__all__ = [
    "FLEET_HISTORY",
    "Ask",
    "CallRefused",
    "CallScope",
    "Fleet",
    "FleetGate",
    "FleetState",
    "Limits",
    "Slot",
    "Verdict",
    "build_fleet",
    "call_scope",
    "current_scope",
    "decide",
]
