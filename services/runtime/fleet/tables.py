"""The fleet's shared tables: every replica of every service (and the gateway) reads and
writes them, so they live in one database (``fleet_database_url``), not a service's own."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Float, Index, Integer, MetaData, String, Table

fleet_metadata = MetaData()

# One row per LLM call in flight anywhere; a crashed holder's row expires.
llm_slots = Table(
    "cardflow_fleet_llm_slots",
    fleet_metadata,
    Column("slot_id", String(64), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("run_id", String(64), nullable=True),
    Column("granted_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("estimated_cost_usd", Float, nullable=False, default=0.0),
)

# Tokens used (estimated at grant, corrected at release) in the last minute.
token_use = Table(
    "cardflow_fleet_token_use",
    fleet_metadata,
    Column("slot_id", String(64), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("tokens", Integer, nullable=False),
    Index("ix_cardflow_fleet_token_use_at", "at"),
)

# What a run has spent and has reserved for calls in flight, and whether it was cancelled.
run_ledger = Table(
    "cardflow_fleet_runs",
    fleet_metadata,
    Column("run_id", String(64), primary_key=True),
    Column("spent_usd", Float, nullable=False, default=0.0),
    Column("reserved_usd", Float, nullable=False, default=0.0),
    Column("cancelled_at", DateTime(timezone=True), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
