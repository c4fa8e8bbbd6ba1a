"""stories

Revision ID: stories_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "stories_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stories",
        sa.Column("story_id", sa.String(64), primary_key=True),
        sa.Column("epic_id", sa.String(64), nullable=False),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("story", sa.Text, nullable=False),
        sa.Column("provenance", sa.Text, nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_stories_epic_id", "stories", ["epic_id"])


def downgrade() -> None:
    op.drop_index("ix_stories_epic_id", table_name="stories")
    op.drop_table("stories")
