"""Lexical (BM25) retrieval: a ``terms`` table of postings — (chunk, term, tf), cascading with the
chunk — and each chunk's length in terms (``chunks.n_terms``); existing chunks are indexed here, with
the tokenizer of :mod:`indexing.lexical` (the one queries use).

Revision ID: 0010
Revises: 0009
"""

from collections import Counter

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None
BATCH = 2000


def upgrade() -> None:
    from indexing.lexical import terms

    with op.batch_alter_table("chunks") as batch:
        batch.add_column(sa.Column("n_terms", sa.Integer(), nullable=True))
    op.create_table(
        "terms",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("chunk_id", sa.Integer(), sa.ForeignKey("chunks.id", ondelete="CASCADE"), nullable=False),
        sa.Column("collection_id", sa.Integer(), nullable=False),
        sa.Column("term", sa.String(64), nullable=False),
        sa.Column("tf", sa.Integer(), nullable=False),
    )
    op.create_index("ix_terms_chunk_id", "terms", ["chunk_id"])
    op.create_index("ix_terms_collection_term", "terms", ["collection_id", "term"])
    bind = op.get_bind()
    chunks = sa.table("chunks", sa.column("id"), sa.column("collection_id"), sa.column("text"), sa.column("n_terms"))
    postings = sa.table("terms", sa.column("chunk_id"), sa.column("collection_id"), sa.column("term"), sa.column("tf"))
    last = 0
    while True:
        rows = bind.execute(sa.select(chunks.c.id, chunks.c.collection_id, chunks.c.text).where(chunks.c.id > last)
                            .order_by(chunks.c.id).limit(BATCH)).all()
        if not rows:
            break
        out, lengths = [], []
        for chunk_id, collection_id, text in rows:
            counts = Counter(terms(text))
            lengths.append({"cid": chunk_id, "n": sum(counts.values())})
            out += [{"chunk_id": chunk_id, "collection_id": collection_id, "term": t, "tf": n} for t, n in counts.items()]
        if out:
            bind.execute(postings.insert(), out)
        bind.execute(chunks.update().where(chunks.c.id == sa.bindparam("cid")).values(n_terms=sa.bindparam("n")), lengths)
        last = rows[-1][0]


def downgrade() -> None:
    op.drop_table("terms")
    with op.batch_alter_table("chunks") as batch:
        batch.drop_column("n_terms")
