"""Alembic environment for the runtime's own tables (inbox, outbox)."""

from services.runtime.migrate import run_env
from services.runtime.tables import runtime_metadata

run_env(runtime_metadata)
