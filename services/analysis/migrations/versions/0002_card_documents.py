"""the document reader's findings on each card

Revision ID: analysis_0002
Revises: analysis_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "analysis_0002"
down_revision = "analysis_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # JSON of contracts.documents.DocumentContext; NULL for cards submitted before the reader.
    op.add_column("analysis_cards", sa.Column("document", sa.Text, nullable=True))


def downgrade() -> None:
    op.drop_column("analysis_cards", "document")
