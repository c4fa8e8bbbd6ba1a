"""awaited analyses name their version: only that analysis of the card releases the run

Revision ID: epics_0003
Revises: epics_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "epics_0003"
down_revision = "epics_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Null on rows written before this revision: any analysis of the card releases them,
    # as it did then.
    with op.batch_alter_table("epics_awaited_analyses") as batch:
        batch.add_column(sa.Column("analysis_version", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("epics_awaited_analyses") as batch:
        batch.drop_column("analysis_version")
