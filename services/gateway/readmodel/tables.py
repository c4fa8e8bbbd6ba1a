"""The gateway's tables, per tenant: the rows its commands write (API keys, projects, cards,
uploads, runs, idempotency) and what the projection fills in from events (run items, the
run log, epics, stories, subtasks). Clients read them all through ``queries``."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
)

from contracts.pipeline import AnalysisStatus

metadata = MetaData()

api_keys = Table(
    "gw_api_keys",
    metadata,
    Column("key_id", String(64), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("key_hash", String(128), nullable=False),
    Column("name", String(200), nullable=False, default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

projects = Table(
    "gw_projects",
    metadata,
    Column("project_id", String(64), primary_key=True),
    Column("tenant_id", String(64), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("card_count", Integer, nullable=False, default=0),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

uploads = Table(
    "gw_uploads",
    metadata,
    Column("upload_id", String(64), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("project_id", String(64), nullable=False),
    Column("file_name", String(300), nullable=False),
    Column("size_bytes", Integer, nullable=False),
    Column("card_count", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

cards = Table(
    "gw_cards",
    metadata,
    Column("card_id", String(64), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("project_id", String(64), nullable=False),
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("external_id", String(200), nullable=True),
    Column("upload_id", String(64), nullable=True),
    Column("position", Integer, nullable=False),
    # pending → analyzing → analyzed | failed
    Column("analysis_status", String(16), nullable=False, default=AnalysisStatus.PENDING.value),
    Column("analysis", Text, nullable=True),
    Column("analysis_version", String(64), nullable=True),
    Column("analysis_provenance", Text, nullable=True),
    Column("analysis_error", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_gw_cards_project", "project_id", "position"),
)

runs = Table(
    "gw_runs",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("project_id", String(64), nullable=False),
    Column("stage", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("options", Text, nullable=False, default="{}"),
    Column("scope", Text, nullable=False, default="{}"),
    Column("stages_finished", Text, nullable=False, default="[]"),
    Column("cancel_requested", Boolean, nullable=False, default=False),
    Column("llm_calls", Integer, nullable=False, default=0),
    Column("input_tokens", Integer, nullable=False, default=0),
    Column("output_tokens", Integer, nullable=False, default=0),
    Column("cost_usd", Float, nullable=False, default=0.0),
    Column("max_running", Integer, nullable=False, default=0),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("version", Integer, nullable=False, default=1),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_gw_runs_project", "project_id", "created_at"),
)

run_items = Table(
    "gw_run_items",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("stage", String(16), primary_key=True),
    Column("item_id", String(128), primary_key=True),
    Column("seq", Integer, nullable=False),
    Column("title", Text, nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("tokens_so_far", Integer, nullable=False, default=0),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("error_code", String(64), nullable=True),
    Column("error_message", Text, nullable=True),
    Column("provenance", Text, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # An item that plans its stage's other items (the epics grouping): no backlog item of its own.
    Column("planning", Boolean, nullable=False, default=False, server_default=false()),
)

run_log = Table(
    "gw_run_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), nullable=False, index=True),
    Column("time", DateTime(timezone=True), nullable=False),
    Column("level", String(16), nullable=False),
    Column("service", String(64), nullable=False),
    Column("stage", String(16), nullable=True),
    Column("item_id", String(128), nullable=True),
    Column("message", Text, nullable=False),
)

idempotency = Table(
    "gw_idempotency_keys",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("run_id", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

epics = Table(
    "gw_epics",
    metadata,
    Column("epic_id", String(64), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("project_id", String(64), nullable=False, index=True),
    Column("position", Integer, nullable=False),
    Column("epic", Text, nullable=False),
    Column("provenance", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # The epic of a later grouping that replaced it: kept, hidden from the backlog.
    Column("superseded_by", String(64), nullable=True),
)

stories = Table(
    "gw_stories",
    metadata,
    Column("story_id", String(64), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("project_id", String(64), nullable=False, index=True),
    Column("epic_id", String(64), nullable=False, index=True),
    Column("position", Integer, nullable=False),
    Column("story", Text, nullable=False),
    Column("provenance", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

subtasks = Table(
    "gw_subtasks",
    metadata,
    Column("subtask_id", String(64), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("project_id", String(64), nullable=False, index=True),
    Column("epic_id", String(64), nullable=False),
    Column("story_id", String(64), nullable=False, index=True),
    Column("position", Integer, nullable=False),
    Column("subtask", Text, nullable=False),
    Column("provenance", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# The result event of a run's item has been projected. A run is finished only when every
# succeeded item's result is here: progress and results travel on different topics, so the
# progress consumer may see ``item_succeeded`` before the backlog shows what it made.
item_results = Table(
    "gw_item_results",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("stage", String(16), primary_key=True),
    Column("item_id", String(128), primary_key=True),
    Column("event_id", String(64), nullable=False),
    Column("landed_at", DateTime(timezone=True), nullable=False),
)
