"""planning items: a run item that plans its stage's other items (the epics grouping)

Revision ID: gateway_0005
Revises: gateway_0004
"""

import sqlalchemy as sa
from alembic import op

revision = "gateway_0005"
down_revision = "gateway_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("gw_run_items") as batch:
        batch.add_column(
            sa.Column("planning", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("gw_run_items") as batch:
        batch.drop_column("planning")
