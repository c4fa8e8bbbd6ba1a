"""The envelope: wire round trip, causation/correlation rules, ids, strictness."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from pydantic import ValidationError

from contracts import Envelope, caused_by, new_event_id, root_envelope


def make_root(**overrides: Any) -> Envelope:
    fields: dict[str, Any] = {
        "type": "cardflow.cards.submitted",
        "schema_version": 1,
        "source": "gateway",
        "tenant_id": "acme",
        "project_id": "p1",
        "run_id": "run-1",
        "key": "card-1",
        "data": {"title": "Login", "tags": ["auth"], "points": 3, "extra": None},
    }
    return root_envelope(**(fields | overrides))


def test_round_trip_through_bytes_is_lossless() -> None:
    event = make_root()
    raw = event.to_bytes()
    assert isinstance(raw, bytes)
    assert Envelope.from_bytes(raw) == event
    assert Envelope.from_bytes(raw).time.tzinfo is not None


def test_caused_by_a_lineage_takes_its_tenant_project_run_correlation_and_cause() -> None:
    command = make_root()
    # What a stage keeps of the command that opened a run: its ids, the command as the cause.
    lineage = command.caused(type="cardflow.x", schema_version=1, source="s", key="k", data={})
    event = caused_by(
        lineage, type="cardflow.run.progress", schema_version=1, source="epics", key="r", data={}
    )
    assert event.causation_id == lineage.causation_id == command.id
    assert (event.tenant_id, event.project_id, event.run_id, event.correlation_id) == (
        command.tenant_id,
        command.project_id,
        command.run_id,
        command.correlation_id,
    )
    assert (event.type, event.source, event.key, event.schema_version) == (
        "cardflow.run.progress",
        "epics",
        "r",
        1,
    )
    assert event.id not in (command.id, lineage.id)


def test_caused_keeps_tenant_and_correlation_and_points_at_its_parent() -> None:
    parent = make_root()
    child = parent.caused(
        type="cardflow.cards.analyzed",
        schema_version=1,
        source="analysis",
        key="card-1",
        data={"summary": "..."},
    )
    assert child.tenant_id == parent.tenant_id
    assert child.correlation_id == parent.correlation_id
    assert child.causation_id == parent.id
    assert (child.project_id, child.run_id) == (parent.project_id, parent.run_id)
    assert child.id != parent.id

    grandchild = child.caused(
        type="cardflow.epics.generated",
        schema_version=1,
        source="epics",
        key="epic-1",
        data={},
        run_id="child-run",
    )
    assert grandchild.causation_id == child.id
    assert grandchild.correlation_id == parent.correlation_id
    assert grandchild.run_id == "child-run"


def test_root_envelope_correlates_by_run_id() -> None:
    event = make_root(run_id="run-42")
    assert event.correlation_id == "run-42"
    assert event.causation_id is None


def test_root_envelope_without_run_correlates_by_its_own_id() -> None:
    event = make_root(run_id=None)
    assert event.correlation_id == event.id


def test_ids_are_uuid7_and_increasing() -> None:
    ids = [make_root().id for _ in range(200)] + [new_event_id() for _ in range(200)]
    assert all(uuid.UUID(i).version == 7 for i in ids)
    # Time-ordered even within one millisecond, so ids sort in creation order.
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_unknown_fields_from_a_newer_producer_are_ignored() -> None:
    # Additive envelope changes must not break consumers still on the older model.
    event = make_root()
    parsed = Envelope.model_validate(event.model_dump(mode="json") | {"added_later": 1})
    assert parsed == event


@pytest.mark.parametrize(
    "bad_type",
    ["", "story.generated", "cardflow", "cardflow.Story.Generated", "cardflow.story generated"],
)
def test_bad_type_is_rejected(bad_type: str) -> None:
    with pytest.raises(ValidationError, match="type"):
        make_root(type=bad_type)


def test_envelope_is_immutable() -> None:
    event = make_root()
    with pytest.raises(ValidationError):
        event.tenant_id = "other"  # type: ignore[misc]
