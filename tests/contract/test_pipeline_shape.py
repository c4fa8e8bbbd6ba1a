"""The pipeline's shape has one home (``contracts/pipeline.py``): it agrees with the events
and topics, and no other module spells the stage order or the run states again."""

from __future__ import annotations

import re
from pathlib import Path

from contracts import pipeline
from contracts.events import Stage
from contracts.topics import TopicKind

ROOT = Path(__file__).resolve().parents[2]


def test_the_stages_are_the_event_stages_in_order_each_with_its_command_and_scope() -> None:
    assert tuple(Stage) == pipeline.STAGES
    assert set(pipeline.COMMAND) == set(Stage)
    assert all(t.kind is TopicKind.COMMAND for t in pipeline.COMMAND.values())
    assert set(pipeline.SCOPE) == set(pipeline.RUN_STAGES)
    assert pipeline.stages_of(pipeline.PIPELINE) == pipeline.STAGE_NAMES
    assert pipeline.stages_of("stories") == ("stories",)
    # Streamed stages follow a stage of the pipeline: never the first.
    assert pipeline.STAGES[0] not in pipeline.STREAMED


def test_run_statuses_are_active_or_terminal_never_both() -> None:
    active, terminal = pipeline.ACTIVE_RUN_STATUSES, pipeline.TERMINAL_RUN_STATUSES
    assert not active & terminal
    assert active | terminal == set(pipeline.RunStatus)


_ORDER = re.compile(r"""["']analysis["'],\s*["']epics["'],\s*["']stories["'],\s*["']subtasks["']""")


def test_no_other_module_spells_the_stage_order() -> None:
    spelled = [
        str(path.relative_to(ROOT))
        for folder in ("services", "contracts")
        for path in (ROOT / folder).rglob("*")
        if path.suffix in (".py", ".js")
        and path.name != "pipeline.py"
        and _ORDER.search(path.read_text(encoding="utf-8"))
    ]
    assert spelled == []
