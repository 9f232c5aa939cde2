"""Lexical retrieval: BM25 over a postings table in the catalog (migration 0010).

Each chunk's terms (lower-cased words; numbers kept whole, "1,234.5" -> "1234.5") are stored as
``(chunk, term, tf)`` rows in the same transaction as the chunk, and go with it by ``ON DELETE
CASCADE``: the lexical index is part of SQL, the truth, so it is never rebuilt per query, never out
of step with the chunks after a crash, and the same on SQLite and PostgreSQL. A query reads the
postings of its terms only (an index on ``(collection_id, term)``) and scores them with BM25
(k1 = 1.2, b = 0.75; Robertson's idf, always positive).

Numbers and names are what dense embeddings blur and exact matching keeps: "organic revenue growth
14.3%" finds the chunk that says 14.3.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Index, Integer, String, func, select
from sqlalchemy.orm import Mapped, mapped_column

from indexing.catalog import Base, Chunk

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

K1, B = 1.2, 0.75
MAX_TERM = 64  # longer "words" (hashes, base64) are cut; they still match themselves
_TOKEN = re.compile(r"\d[\d,]*(?:\.\d+)?|[^\W\d_]+(?:['’][^\W\d_]+)?", re.UNICODE)
STOPWORDS = frozenset("""a an and are as at be but by for from had has have he her his i if in into is it its of on
or she so than that the their them then there these they this to was were what when where which who whom why
will with would you your do does did how not no yes can could should may might""".split())


class Term(Base):
    """One term of one chunk and how often it occurs there (a BM25 posting)."""

    __tablename__ = "terms"
    __table_args__ = (Index("ix_terms_collection_term", "collection_id", "term"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    chunk_id: Mapped[int] = mapped_column(ForeignKey("chunks.id", ondelete="CASCADE"), index=True)
    collection_id: Mapped[int] = mapped_column(Integer)
    term: Mapped[str] = mapped_column(String(MAX_TERM))
    tf: Mapped[int] = mapped_column(Integer)


def terms(text: str) -> list[str]:
    """The text's index terms, in order (stopwords dropped)."""
    out = []
    for match in _TOKEN.finditer(text.lower()):
        token = match.group()
        if token[0].isdigit():
            token = token.replace(",", "").rstrip(".")
        elif token in STOPWORDS:
            continue
        out.append(token[:MAX_TERM])
    return out


def add_postings(session: Session, chunks: list[Chunk]) -> None:
    """Inside the caller's transaction, after the chunks have their ids: their postings and lengths."""
    rows = []
    for chunk in chunks:
        counts = Counter(terms(chunk.text))
        chunk.n_terms = sum(counts.values())
        rows += [{"chunk_id": chunk.id, "collection_id": chunk.collection_id, "term": t, "tf": n} for t, n in counts.items()]
    if rows:
        session.execute(Term.__table__.insert(), rows)


def search(session: Session, collection_id: int, question: str, k: int, *,
           document_ids: list[int] | None = None) -> list[tuple[int, float]]:
    """Top-k (chunk id, BM25 score) of the collection for ``question``, best first ([] when no term matches)."""
    wanted = Counter(terms(question))
    if not wanted:
        return []
    in_collection = Chunk.collection_id == collection_id
    n, total = session.execute(select(func.count(Chunk.id), func.coalesce(func.sum(Chunk.n_terms), 0)).where(in_collection)).one()
    if not n:
        return []
    avgdl = max(total / n, 1.0)
    df = dict(session.execute(select(Term.term, func.count()).where(Term.collection_id == collection_id,
                                                                     Term.term.in_(wanted)).group_by(Term.term)).all())
    idf = {t: math.log(1 + (n - d + 0.5) / (d + 0.5)) for t, d in df.items()}
    query = (select(Term.chunk_id, Term.term, Term.tf, Chunk.n_terms).join(Chunk, Chunk.id == Term.chunk_id)
             .where(Term.collection_id == collection_id, Term.term.in_(list(df))))
    if document_ids is not None:
        query = query.where(Chunk.document_id.in_(document_ids))
    scores: dict[int, float] = {}
    for chunk_id, term, tf, length in session.execute(query):
        norm = tf + K1 * (1 - B + B * (length or 0) / avgdl)
        scores[chunk_id] = scores.get(chunk_id, 0.0) + wanted[term] * idf[term] * tf * (K1 + 1) / norm
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:k]


def fuse(rankings: list[list[tuple[int, float]]], k: int, *, c: int = 60) -> list[tuple[int, float]]:
    """Reciprocal rank fusion: each id scores sum over rankings of 1 / (c + rank); top-k, best first."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, (item, _score) in enumerate(ranking, 1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (c + rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
