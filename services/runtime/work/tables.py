"""The work queue's tables (in the runtime's metadata, created by runtime migration 0003)."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, Index, Integer, String, Table, Text

from services.runtime.tables import runtime_metadata

work_runs = Table(
    "cardflow_work_runs",
    runtime_metadata,
    Column("run_id", String(64), primary_key=True),
    Column("stage", String(32), nullable=False),
    Column("project_id", String(64), nullable=False),
    Column("tenant_id", String(64), nullable=False),
    Column("correlation_id", String(64), nullable=False),
    Column("causation_id", String(64), nullable=True),
    Column("pipeline", Boolean, nullable=False, default=False),
    Column("options", Text, nullable=False, default="{}"),
    Column("scope", Text, nullable=False, default="[]"),
    # open: items may still be added; closed: the set is complete; finished: all terminal.
    Column("state", String(16), nullable=False, default="open"),
    Column("cancel_requested", Boolean, nullable=False, default=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
)

work_items = Table(
    "cardflow_work_items",
    runtime_metadata,
    Column("run_id", String(64), primary_key=True),
    Column("item_id", String(128), primary_key=True),
    Column("seq", Integer, nullable=False, default=0),
    Column("title", Text, nullable=False, default=""),
    Column("payload", Text, nullable=False, default="{}"),
    # waiting (input not here yet) → pending → running → succeeded | failed | cancelled
    Column("state", String(16), nullable=False),
    Column("wait_key", String(200), nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("not_before", DateTime(timezone=True), nullable=False),
    Column("lease_owner", String(200), nullable=True),
    Column("lease_until", DateTime(timezone=True), nullable=True),
    Column("error_code", String(64), nullable=True),
    Column("error_message", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_cardflow_work_items_ready", "state", "not_before"),
    Index("ix_cardflow_work_items_wait", "wait_key"),
)
