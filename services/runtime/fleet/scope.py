"""Which run the LLM call being made belongs to: set by the item runner around an item's
work, read by the LLM client when it asks the fleet gate for a slot. A context variable keeps
stage code free of this plumbing; each item runs in its own task, so scopes never mix."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CallScope:
    run_id: str
    budget_usd: float | None = None


_current: ContextVar[CallScope | None] = ContextVar("cardflow_call_scope", default=None)


def current_scope() -> CallScope | None:
    return _current.get()


@contextmanager
def call_scope(scope: CallScope) -> Iterator[None]:
    token = _current.set(scope)
    try:
        yield
    finally:
        _current.reset(token)
