"""Alembic environment for the fleet's shared tables (LLM slots, token window, run ledger)."""

from services.runtime.fleet.tables import fleet_metadata
from services.runtime.migrate import run_env

run_env(fleet_metadata)
