"""fleet-wide LLM limits and run ledger

Revision ID: fleet_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "fleet_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cardflow_fleet_llm_slots",
        sa.Column("slot_id", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("estimated_cost_usd", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("slot_id"),
    )
    op.create_table(
        "cardflow_fleet_token_use",
        sa.Column("slot_id", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tokens", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("slot_id"),
    )
    op.create_index("ix_cardflow_fleet_token_use_at", "cardflow_fleet_token_use", ["at"])
    op.create_table(
        "cardflow_fleet_runs",
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("spent_usd", sa.Float(), nullable=False),
        sa.Column("reserved_usd", sa.Float(), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("run_id"),
    )


def downgrade() -> None:
    op.drop_table("cardflow_fleet_runs")
    op.drop_index("ix_cardflow_fleet_token_use_at", "cardflow_fleet_token_use")
    op.drop_table("cardflow_fleet_token_use")
    op.drop_table("cardflow_fleet_llm_slots")
