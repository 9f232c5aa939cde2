"""Each collection names its summary-store file: a rebuild writes a new file and switches to it in
the transaction that switches the chunks (NULL: the original summaries.f16).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("collections") as batch:
        batch.add_column(sa.Column("summary_file", sa.String(100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("collections") as batch:
        batch.drop_column("summary_file")
