"""One card's analysis through the LLM client: one call, or one per part of a card too long
for the model's context, asked at once (each within the fleet's limit) and joined."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from contracts.backlog import Provenance
from contracts.events import ErrorCode
from services.analysis import logic, parts
from services.runtime.llm import LLMClient, LLMError, LLMResult, OnTokens


async def analyse(
    llm: LLMClient, card: logic.Card, on_tokens: OnTokens | None = None
) -> LLMResult[logic.AnalysisDraft]:
    """The card's draft; LLMError as the client raises it, or ``llm_invalid_output`` when
    no part of a card the reader found nothing in names a requirement."""
    pieces = parts.split(card, await llm.context_tokens())
    if len(pieces) == 1:
        return await llm.generate(logic.llm_request(card), on_tokens=on_tokens)
    started = time.monotonic()
    streamed = [0] * len(pieces)

    def reporter(index: int) -> OnTokens | None:
        if on_tokens is None:
            return None

        async def report(tokens: int) -> None:
            # The item's progress is the sum of what its parts have streamed.
            streamed[index] = tokens
            await on_tokens(sum(streamed))

        return report

    tasks: list[asyncio.Task[LLMResult[logic.AnalysisDraft]]] = []
    try:
        async with asyncio.TaskGroup() as group:
            for index, part in enumerate(pieces):
                request = logic.llm_request(part.card, (part.number, part.of))
                call = llm.generate(request, on_tokens=reporter(index))
                tasks.append(group.create_task(call))
    except BaseExceptionGroup as failed:
        raise _with_spend(_first(failed), tasks) from None
    results = [task.result() for task in tasks]
    draft = parts.merge([r.output for r in results])
    provenance = _joined([r.provenance for r in results], time.monotonic() - started)
    try:
        logic.validate(card)(draft)
    except ValueError as invalid:
        raise LLMError(
            ErrorCode.LLM_INVALID_OUTPUT,
            f"{invalid} (none in any of the card's {len(pieces)} parts)",
            retryable=False,
            attempts=provenance.attempts,
            input_tokens=provenance.input_tokens,
            output_tokens=provenance.output_tokens,
            cost_usd=provenance.cost_usd,
        ) from None
    return LLMResult(draft, provenance)


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error that ended the parts' calls (the others were cancelled by it)."""
    for error in group.exceptions:
        if isinstance(error, BaseExceptionGroup):
            return _first(error)
        if not isinstance(error, asyncio.CancelledError):
            return error
    return group.exceptions[0]


def _with_spend(
    error: BaseException, tasks: list[asyncio.Task[LLMResult[logic.AnalysisDraft]]]
) -> BaseException:
    """The error, charged also with what the parts that had finished spent, so the run's
    usage and budget see those calls (parts cut off by the cancel count in the metrics)."""
    if not isinstance(error, LLMError):
        return error
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is None:
            spent = task.result().provenance
            error.attempts += spent.attempts
            error.input_tokens += spent.input_tokens
            error.output_tokens += spent.output_tokens
            error.cost_usd += spent.cost_usd
    return error


def _joined(each: Sequence[Provenance], duration_s: float) -> Provenance:
    """The card's provenance: what all its calls cost together, over the time they took."""
    first = each[0]
    return first.model_copy(
        update={
            "cached": all(p.cached for p in each),
            "input_tokens": sum(p.input_tokens for p in each),
            "output_tokens": sum(p.output_tokens for p in each),
            "cost_usd": sum(p.cost_usd for p in each),
            "attempts": sum(p.attempts for p in each),
            "repairs": sum(p.repairs for p in each),
            "duration_s": round(duration_s, 3),
        }
    )
