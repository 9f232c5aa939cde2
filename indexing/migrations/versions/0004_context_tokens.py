"""Evaluation rows count the prompt's context part (chunk tokens or summary vectors) separately.

The whole-prompt ratio between lloco and rag is bounded by the shared chat template,
instruction and question; the compression ratio LLoCO is about is the context part's.
Rows written before this revision have no count (NULL) and are left out of its means.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("eval_rows") as batch:  # batch: SQLite cannot alter tables in place
        batch.add_column(sa.Column("context_tokens", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("eval_rows") as batch:
        batch.drop_column("context_tokens")
