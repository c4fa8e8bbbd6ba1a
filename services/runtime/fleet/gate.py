"""The fleet gate: every LLM call of every replica takes a slot here first.

One small transaction decides and records a grant, serialised fleet-wide (SQLite: the write
lock BEGIN IMMEDIATE takes; PostgreSQL: an advisory transaction lock), so two replicas can
never both take the last slot. A slot expires if its holder dies; releasing it records what
the call really used, for the token window and the run's budget.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts.events import ErrorCode
from services.runtime import metrics
from services.runtime.db import dialect_insert
from services.runtime.fleet.policy import Ask, FleetState, Limits, Verdict, decide
from services.runtime.fleet.scope import CallScope
from services.runtime.fleet.tables import llm_slots, run_ledger, token_use

log = logging.getLogger(__name__)

WINDOW = timedelta(seconds=60)
_LOCK_ID = zlib.crc32(b"cardflow-fleet-gate")


class CallRefused(Exception):
    """The call may not start, and waiting will not change that (cancelled, over budget)."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = False
        self.retry_after_s: float | None = None


@dataclass
class Slot:
    slot_id: str
    run_id: str | None
    estimated_tokens: int
    estimated_cost_usd: float
    used_tokens: int | None = None
    used_cost_usd: float | None = None

    def settle(self, tokens: int, cost_usd: float) -> None:
        """What the call really used (else the estimate is recorded)."""
        self.used_tokens = tokens
        self.used_cost_usd = cost_usd


def _now() -> datetime:
    return datetime.now(UTC)


class FleetGate:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        limits: Limits,
        *,
        holder: str,
        slot_ttl_s: float,
        poll_s: float = 0.2,
    ) -> None:
        self._sessions = sessions
        self.limits = limits
        self._holder = holder
        self._slot_ttl = timedelta(seconds=slot_ttl_s)
        self._poll_s = poll_s

    @asynccontextmanager
    async def slot(
        self, scope: CallScope | None, estimated_tokens: int, estimated_cost_usd: float
    ) -> AsyncIterator[Slot]:
        """Waits for a slot (the caller's deadline bounds the wait); raises CallRefused."""
        slot = await self._acquire(scope, estimated_tokens, estimated_cost_usd)
        try:
            yield slot
        finally:
            # Shielded: a cancelled call must still give its slot back (else it waits for
            # the slot to expire, and the fleet runs below its ceiling until then).
            await asyncio.shield(self._release(slot))

    async def _acquire(
        self, scope: CallScope | None, estimated_tokens: int, estimated_cost_usd: float
    ) -> Slot:
        ask = Ask(estimated_tokens, estimated_cost_usd, scope.budget_usd if scope else None)
        waited = False
        began = time.monotonic()
        while True:
            slot = await self._try_grant(scope, ask)
            if slot is not None:
                metrics.LLM_SLOT_WAIT.observe(time.monotonic() - began)
                if waited:
                    log.info("llm slot granted after waiting for the fleet's ceiling")
                return slot
            if not waited:
                metrics.LLM_RATE_LIMIT_WAITS.labels(source="fleet").inc()
            waited = True
            await asyncio.sleep(self._poll_s * random.uniform(0.5, 1.5))

    async def _try_grant(self, scope: CallScope | None, ask: Ask) -> Slot | None:
        run_id = scope.run_id if scope else None
        async with self._sessions.begin() as session:
            await _serialise(session)
            now = _now()
            await session.execute(delete(llm_slots).where(llm_slots.c.expires_at < now))
            await session.execute(delete(token_use).where(token_use.c.at < now - WINDOW))
            state = await _state(session, run_id)
            verdict = decide(self.limits, state, ask)
            if verdict is Verdict.CANCELLED:
                raise CallRefused(ErrorCode.CANCELLED, "the run was cancelled")
            if verdict is Verdict.OVER_BUDGET:
                assert ask.budget_usd is not None
                raise CallRefused(
                    ErrorCode.BUDGET_EXCEEDED,
                    f"the next call (about ${ask.estimated_cost_usd:.4f}) would take the run "
                    f"past its budget of ${ask.budget_usd:.4f} "
                    f"(spent ${state.run_spent_usd:.4f}, "
                    f"in flight ${state.run_reserved_usd:.4f})",
                )
            if verdict is Verdict.WAIT:
                return None
            slot = Slot(uuid.uuid4().hex, run_id, ask.estimated_tokens, ask.estimated_cost_usd)
            await session.execute(
                llm_slots.insert().values(
                    slot_id=slot.slot_id,
                    holder=self._holder,
                    run_id=run_id,
                    granted_at=now,
                    expires_at=now + self._slot_ttl,
                    estimated_cost_usd=ask.estimated_cost_usd,
                )
            )
            await session.execute(
                token_use.insert().values(slot_id=slot.slot_id, at=now, tokens=ask.estimated_tokens)
            )
            if run_id is not None:
                await _ledger(session, run_id, reserved=ask.estimated_cost_usd)
            return slot

    async def _release(self, slot: Slot) -> None:
        tokens = slot.estimated_tokens if slot.used_tokens is None else slot.used_tokens
        cost = slot.estimated_cost_usd if slot.used_cost_usd is None else slot.used_cost_usd
        try:
            async with self._sessions.begin() as session:
                gone = await session.execute(
                    delete(llm_slots).where(llm_slots.c.slot_id == slot.slot_id)
                )
                await session.execute(
                    update(token_use)
                    .where(token_use.c.slot_id == slot.slot_id)
                    .values(tokens=tokens)
                )
                if slot.run_id is not None:
                    # An expired slot's reservation was never freed by anyone else: free it.
                    held = getattr(gone, "rowcount", 0) == 1
                    await _ledger(
                        session,
                        slot.run_id,
                        reserved=-slot.estimated_cost_usd if held else 0.0,
                        spent=cost,
                    )
        except Exception:
            log.warning("releasing an llm slot failed; it expires by itself", exc_info=True)

    # --- runs ---------------------------------------------------------------------------

    async def cancel_run(self, run_id: str) -> None:
        """From now on no LLM call of the run starts, on any replica."""
        async with self._sessions.begin() as session:
            await _ledger(session, run_id, cancelled=True)

    async def reopen_run(self, run_id: str) -> None:
        """A retried run may call the LLM again."""
        async with self._sessions.begin() as session:
            await _ledger(session, run_id, cancelled=False)

    async def run_state(self, run_id: str) -> FleetState:
        async with self._sessions() as session:
            return await _state(session, run_id)


async def _serialise(session: AsyncSession) -> None:
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})


async def _state(session: AsyncSession, run_id: str | None) -> FleetState:
    in_flight = (await session.execute(select(func.count()).select_from(llm_slots))).scalar_one()
    tokens = (
        await session.execute(select(func.coalesce(func.sum(token_use.c.tokens), 0)))
    ).scalar_one()
    row = None
    if run_id is not None:
        row = (
            await session.execute(select(run_ledger).where(run_ledger.c.run_id == run_id))
        ).first()
    return FleetState(
        in_flight=int(in_flight),
        tokens_last_minute=int(tokens),
        run_spent_usd=float(row.spent_usd) if row else 0.0,
        run_reserved_usd=max(0.0, float(row.reserved_usd)) if row else 0.0,
        run_cancelled=bool(row and row.cancelled_at is not None),
    )


async def _ledger(
    session: AsyncSession,
    run_id: str,
    *,
    reserved: float = 0.0,
    spent: float = 0.0,
    cancelled: bool | None = None,
) -> None:
    now = _now()
    await session.execute(
        dialect_insert(session)(run_ledger)
        .values(run_id=run_id, spent_usd=0.0, reserved_usd=0.0, cancelled_at=None, updated_at=now)
        .on_conflict_do_nothing()
    )
    values: dict[str, object] = {
        "spent_usd": run_ledger.c.spent_usd + spent,
        "reserved_usd": run_ledger.c.reserved_usd + reserved,
        "updated_at": now,
    }
    if cancelled is not None:
        values["cancelled_at"] = now if cancelled else None
    await session.execute(update(run_ledger).where(run_ledger.c.run_id == run_id).values(values))
