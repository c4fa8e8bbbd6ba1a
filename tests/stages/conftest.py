"""The ``open_stage`` fixture: a stage service in process (see harness.py)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from contracts.events import Stage
from tests.stages.harness import StageHarness
from tests.stages.harness import open_stage as open_harness

OpenStage = Callable[..., contextlib.AbstractAsyncContextManager[StageHarness]]


@pytest.fixture
def open_stage(tmp_path: Path) -> OpenStage:
    """``async with open_stage(Stage.EPICS) as epics:`` the real epics service on the test
    broker and a SQLite file of this test's, its items running (``run_items=False``: not
    until ``epics.start_items()``); other keywords are settings."""

    def opener(
        stage: Stage, **options: Any
    ) -> contextlib.AbstractAsyncContextManager[StageHarness]:
        return open_harness(tmp_path / stage.value, stage, **options)

    return opener
