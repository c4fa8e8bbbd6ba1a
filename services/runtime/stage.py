"""What every stage service is built from: a service, its work queue, an item runner and
the LLM client, with helpers for the things each stage does the same way."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Mapping
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Envelope, caused_by
from contracts.events import ControlAction, RunControl, Stage
from contracts.topics import RUNS_CONTROL
from services.runtime import metrics
from services.runtime.delivery import Handler, HandlerContext
from services.runtime.llm import LLMClient, SqlResultCache, build_llm_client
from services.runtime.migrate import MigrationHistory
from services.runtime.periodic import refresh_every
from services.runtime.service import build_service, run_service
from services.runtime.settings import Settings, settings_for
from services.runtime.work import ItemRunner, StageWorker, WorkQueue, WorkRun


class StageApp:
    def __init__(
        self, settings: Settings, stage: Stage, migrations: Collection[MigrationHistory]
    ) -> None:
        self.settings = settings
        self.stage = stage
        self.service = build_service(settings, migrations)
        self.sessions = self.service.sessions
        self.queue = WorkQueue(stage, settings.service_name)
        self.llm: LLMClient = build_llm_client(
            settings, SqlResultCache(self.sessions), self.service.fleet.gate
        )
        self._worker: StageWorker | None = None
        self.runner: ItemRunner | None = None

    def set_worker(self, worker: StageWorker) -> None:
        self._worker = worker
        self.runner = ItemRunner(
            self.settings,
            self.sessions,
            self.queue,
            worker,
            on_committed=self.service.relay.notify,
        )
        self.service.consumers.add_commit_listener(self.runner.notify)
        self.consume(RUNS_CONTROL.name, self._on_control, {RunControl.TYPE: {1}})

    async def _on_control(self, ctx: HandlerContext) -> None:
        """Cancel and retry reach every stage service: each acts on its part of the run."""
        control = RunControl.model_validate(ctx.envelope.data)
        if control.action is ControlAction.CANCEL:
            project_id = ctx.envelope.project_id or ""
            await self.queue.cancel_run(ctx.session, ctx.envelope, control.run_id, project_id)
        else:
            await self.queue.retry_run(ctx.session, control.run_id)

    def consume(
        self, topic: str, handler: Handler, versions: Mapping[str, Collection[int]]
    ) -> None:
        self.service.consumers.register(topic, handler, accepted_versions=versions)

    async def open_run(
        self,
        ctx: HandlerContext,
        run_id: str,
        project_id: str,
        pipeline: bool,
        options: dict[str, Any],
        scope: list[str] | None = None,
    ) -> WorkRun:
        return await self.queue.open_run(
            ctx.session,
            ctx.envelope,
            run_id=run_id,
            project_id=project_id,
            pipeline=pipeline,
            options=options,
            scope=scope,
        )

    async def close_run(self, session: AsyncSession, run: WorkRun) -> None:
        """No more items will come; a run with nothing left to do finishes here."""
        if await self.queue.close_run(session, run) and self._worker is not None:
            finished = await self.queue.get_run(session, run.run_id)
            assert finished is not None
            if not finished.cancel_requested:
                await self._worker.run_finished(session, finished)

    def event(self, run: WorkRun, payload: BaseModel, *, key: str) -> Envelope:
        """A domain event or command caused by the command that opened ``run``."""
        return caused_by(
            run,
            type=payload.TYPE,  # type: ignore[attr-defined]
            schema_version=1,
            source=self.settings.service_name,
            key=key,
            data=payload.model_dump(mode="json"),
        )

    async def run(self) -> None:
        assert self.runner is not None, "set_worker() before run()"
        await run_service(self.service, background=[self.runner.run, self.export_waiting])

    async def export_waiting(self, stop: asyncio.Event) -> None:
        """Keeps ``cardflow_items_waiting`` current: the queue depth autoscaling follows."""
        gauge = metrics.ITEMS_WAITING.labels(stage=self.stage.value)

        async def read() -> int:
            async with self.sessions() as session:
                return await self.queue.waiting(session)

        await refresh_every(
            WAITING_SAMPLE_S,
            stop,
            read,
            lambda waiting, _: gauge.set(waiting),
            None,
            what="counting waiting items",
        )


WAITING_SAMPLE_S = 5.0
"""How often a stage service counts its waiting items (a KEDA poll is 15 s)."""


def stage_main(
    stage: Stage,
    migrations: Collection[MigrationHistory],
    build: Callable[[StageApp], None],
) -> None:
    """The body of every stage's ``__main__``."""

    async def main() -> None:
        app = StageApp(settings_for(stage.value), stage, migrations)
        build(app)
        await app.run()

    asyncio.run(main())
