"""subtasks

Revision ID: subtasks_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "subtasks_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subtasks",
        sa.Column("subtask_id", sa.String(64), primary_key=True),
        sa.Column("story_id", sa.String(64), nullable=False),
        sa.Column("epic_id", sa.String(64), nullable=False),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("subtask", sa.Text, nullable=False),
        sa.Column("provenance", sa.Text, nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_subtasks_story_id", "subtasks", ["story_id"])


def downgrade() -> None:
    op.drop_index("ix_subtasks_story_id", table_name="subtasks")
    op.drop_table("subtasks")
