"""What a stage's worker gives the item runner back, and how an error becomes an item's
failure: its code, whether to retry, after how long, and what the attempt still cost. Pure."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.backlog import Provenance
from contracts.events import AttemptUsage, ErrorCode, PlannedItem
from services.runtime.backoff import full_jitter
from services.runtime.settings import Settings
from services.runtime.work.records import WorkItem, WorkRun

OnTokens = Callable[[int], Awaitable[None]]


class ItemFailure(Exception):
    """A stage's way to fail an item with one of DESIGN.md's error codes."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        retryable: bool = False,
        retry_after_s: float | None = None,
        usage: AttemptUsage | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable
        self.retry_after_s = retry_after_s
        self.usage = usage
        """What the attempt cost although it failed (a provider bills a stalled stream too)."""


@dataclass(frozen=True, slots=True)
class Committed:
    """What ``commit`` reports: the provenance, and the items it produced for the next stage
    of a pipeline (reported on the ordered progress topic with the item's success)."""

    provenance: Provenance
    produced: list[PlannedItem] = field(default_factory=list)


class StageWorker(Protocol):
    """What a stage supplies: the slow part, and the commit of its result."""

    async def process(self, item: WorkItem, on_tokens: OnTokens) -> Any:
        """The LLM work; no database transaction may be held while it runs."""

    async def commit(
        self, session: AsyncSession, item: WorkItem, outcome: Any
    ) -> Committed | Provenance:
        """Stores the outcome and emits its domain events, in the given transaction."""

    async def run_finished(self, session: AsyncSession, run: WorkRun) -> None:
        """Called once, in the transaction that finished the run (e.g. start the next stage)."""


def as_failure(error: BaseException) -> ItemFailure:
    """Any error as an ItemFailure: LLM errors keep their code and retry advice."""
    if isinstance(error, ItemFailure):
        return error
    code = getattr(error, "code", None)
    if isinstance(code, ErrorCode) or code in {c.value for c in ErrorCode}:
        return ItemFailure(
            ErrorCode(code),
            str(getattr(error, "message", error)),
            retryable=bool(getattr(error, "retryable", False)),
            retry_after_s=getattr(error, "retry_after_s", None),
            usage=_usage_of(error),
        )
    if isinstance(error, TimeoutError):
        return ItemFailure(ErrorCode.LLM_TIMEOUT, "the item's deadline passed", retryable=True)
    return ItemFailure(ErrorCode.INTERNAL, f"{type(error).__name__}: {error}", retryable=True)


def retry_delay(settings: Settings, attempt: int, retry_after_s: float | None) -> float:
    """The provider's Retry-After when it gave one, up to ``work_retry_after_max_s`` (a
    provider must not hold an item, and its run, open for as long as it likes); else our own
    backoff with full jitter."""
    if retry_after_s is not None:
        return min(max(0.0, retry_after_s), settings.work_retry_after_max_s)
    return full_jitter(attempt, settings.work_retry_base_s, settings.work_retry_max_s)


def _usage_of(error: BaseException) -> AttemptUsage | None:
    """The spend an LLMError carries (calls made, tokens, cost), if any."""
    calls = int(getattr(error, "attempts", 0) or 0)
    if not calls:
        return None
    return AttemptUsage(
        llm_calls=calls,
        input_tokens=int(getattr(error, "input_tokens", 0) or 0),
        output_tokens=int(getattr(error, "output_tokens", 0) or 0),
        cost_usd=float(getattr(error, "cost_usd", 0.0) or 0.0),
    )
