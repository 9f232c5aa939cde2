"""A collection keeps its answer thresholds (``collections.thresholds``: per mode, the confidence
below which an answer is declined and at which it is marked supported, chosen on the collection's
own synthetic questions; issue 23). NULL: not calibrated yet.

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("collections") as batch:
        batch.add_column(sa.Column("thresholds", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("collections") as batch:
        batch.drop_column("thresholds")
