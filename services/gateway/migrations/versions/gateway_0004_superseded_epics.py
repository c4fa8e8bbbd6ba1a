"""superseded epics: an epic a later grouping of its cards no longer has

Revision ID: gateway_0004
Revises: gateway_0003
"""

import sqlalchemy as sa
from alembic import op

revision = "gateway_0004"
down_revision = "gateway_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("gw_epics") as batch:
        batch.add_column(sa.Column("superseded_by", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("gw_epics") as batch:
        batch.drop_column("superseded_by")
