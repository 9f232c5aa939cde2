"""An answer keeps what its second look did (``chat_messages.second_look``: the on_doubt kind, both
answers and confidences, which was kept, the second's costs; issue 23), so a reopened conversation
says that the answer shown replaced a first one.

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("chat_messages") as batch:
        batch.add_column(sa.Column("second_look", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("chat_messages") as batch:
        batch.drop_column("second_look")
