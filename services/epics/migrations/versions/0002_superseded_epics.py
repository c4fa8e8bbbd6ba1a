"""superseded epics: the epic of a later grouping that replaced one

Revision ID: epics_0002
Revises: epics_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "epics_0002"
down_revision = "epics_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("epics") as batch:
        batch.add_column(sa.Column("superseded_by", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("epics") as batch:
        batch.drop_column("superseded_by")
