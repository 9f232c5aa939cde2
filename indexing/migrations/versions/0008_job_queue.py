"""A durable job queue: a queued job carries its arguments (``spec``, JSON) so any worker process can
run it, counts its ``attempts`` (an interrupted job is queued again, a few times at most) and records
when it started running (``started_at``: the time left is estimated from it).

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("spec", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("started_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("started_at")
        batch.drop_column("attempts")
        batch.drop_column("spec")
