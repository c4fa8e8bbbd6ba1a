"""llm result cache

Revision ID: runtime_0002
Revises: runtime_0001
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "runtime_0002"
down_revision = "runtime_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cardflow_llm_cache",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("output", sa.Text, nullable=False),
        sa.Column("provenance", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("cardflow_llm_cache")
