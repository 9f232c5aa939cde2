"""SQLite: collections, documents, pages and chunks get AUTOINCREMENT ids, so an id is never given
again after its row is deleted. Without it SQLite reuses the highest deleted id: a document ingested
after a delete took the deleted one's document and chunk ids, and an old chat's citation (which names
them) would then open the wrong document. (PostgreSQL's sequences never reuse ids: nothing to do.)

The tables are rebuilt (Alembic batch mode); :func:`indexing.catalog.upgrade` runs migrations on
SQLite with foreign-key enforcement off, so rebuilding a table does not cascade-delete its children,
and checks the foreign keys afterwards.

Revision ID: 0009
Revises: 0008
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TABLES = ("collections", "documents", "pages", "chunks")


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        with op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_autoincrement": True}):
            pass


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        with op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_autoincrement": False}):
            pass
