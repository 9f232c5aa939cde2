"""Retrieval over one collection: the question's embedding searched in the collection's FAISS
index, the hits' chunks (with their document's name and page offsets) read from SQL, the truth.
Every answering mode, the service's ``retrieve`` and the llama-index adapter retrieve through
:class:`Retriever`, so they see the same chunks for the same question.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from sqlalchemy import select

from indexing.catalog import Chunk, Document, Page

if TYPE_CHECKING:
    import numpy as np
    from sqlalchemy.orm import sessionmaker

    from indexing.collection_index import CollectionIndex
    from indexing.embedder import Embedder
    from indexing.rerank import Reranker


@dataclass
class Hit:
    """A retrieved chunk with its score (cosine), its document's file name and where each page of
    that document starts (for the citation's page)."""

    chunk: Chunk
    score: float
    document: str
    page_offsets: list[int]
    summary: np.ndarray | None = None  # (kappa, d) fp16 summary vectors, read with the chunk when asked for
    ocr_pages: set[int] = field(default_factory=set)  # pages of its document read by OCR (1-based)


RetrievalMode = Literal["dense", "bm25", "hybrid"]
FUSION_POOL = 20  # hybrid: each ranking contributes its best max(4 * k, this) before fusion


@dataclass
class Retriever:
    """Retrieval over one collection: ``dense`` (the collection's embedder and FAISS index), ``bm25``
    (lexical postings in SQL, :mod:`indexing.lexical`) or ``hybrid`` (both, fused by reciprocal rank);
    with a ``reranker``, the first stage's best ``reranker.pool`` chunks reordered by it."""

    sessions: sessionmaker
    index: CollectionIndex
    embedder: Embedder
    mode: RetrievalMode = "dense"
    reranker: Reranker | None = None

    def search(self, question: str, top_k: int, *, document_ids: list[int] | None = None,
               with_summaries: bool = False) -> list[Hit]:
        """Top-k chunks, best first (by retrieval score, or by the reranker's when there is one), only
        from ``document_ids`` when given;
        ``with_summaries``: each hit also carries its summary vectors, read in the same consistent view."""
        # the question's embedding needs no lock: computed before taking the collection's (writers wait on it)
        query = None if self.mode == "bm25" else self.embedder.embed([question])[0]  # (dim,)
        first = top_k if self.reranker is None else max(top_k, self.reranker.pool)
        with self.index.reading():  # no concurrent delete, ingest or rebuild between the reads below
            found = self._ranked(question, query, first, document_ids)
            if not found:
                return []
            with self.sessions() as session:
                rows = session.execute(select(Chunk, Document.filename).join(Document).where(
                    Chunk.id.in_([cid for cid, _ in found]))).all()
                offsets: dict[int, list[int]] = {}
                ocr: dict[int, set[int]] = {}
                for doc_id, page_no, offset, by_ocr in session.execute(
                        select(Page.document_id, Page.page_no, Page.char_offset, Page.ocr).where(
                            Page.document_id.in_({chunk.document_id for chunk, _ in rows})).order_by(Page.page_no)):
                    offsets.setdefault(doc_id, []).append(offset)
                    if by_ocr:
                        ocr.setdefault(doc_id, set()).add(page_no)
            by_id = {chunk.id: (chunk, name) for chunk, name in rows}
            # a FAISS id without its SQL row (a document another process is adding, not committed yet) is no hit
            hits = [Hit(by_id[cid][0], score, by_id[cid][1], offsets.get(by_id[cid][0].document_id, [0]),
                        ocr_pages=ocr.get(by_id[cid][0].document_id, set()))
                    for cid, score in found if cid in by_id]
            if with_summaries and hits:
                vectors = self.index.summary_vectors([h.chunk.summary_row for h in hits])  # (n_hits, kappa, d)
                for hit, v in zip(hits, vectors, strict=True):
                    hit.summary = v
        if self.reranker is not None and len(hits) > 1:  # outside the lock: writers need not wait on the model
            from indexing.rerank import reranked

            hits = [hits[i] for i in reranked(question, [h.chunk.text for h in hits], self.reranker)]
        return hits[:top_k]

    def _ranked(self, question: str, query: np.ndarray | None, k: int,
                document_ids: list[int] | None) -> list[tuple[int, float]]:
        """(chunk id, score) best first, by this retriever's mode (``query``: the question's embedding)."""
        from indexing import lexical

        def dense(n: int) -> list[tuple[int, float]]:
            return self.index.search(query, n, ids=None if document_ids is None else self.chunk_ids(document_ids))

        def bm25(n: int) -> list[tuple[int, float]]:
            with self.sessions() as session:
                return lexical.search(session, self.index.collection_id, question, n, document_ids=document_ids)

        if self.mode == "dense":
            return dense(k)
        if self.mode == "bm25":
            return bm25(k)
        pool = max(4 * k, FUSION_POOL)
        return lexical.fuse([dense(pool), bm25(pool)], k)

    def chunk_ids(self, document_ids: list[int]) -> list[int]:
        """The FAISS ids (chunk ids) of these documents' chunks in this collection."""
        with self.sessions() as session:
            return list(session.scalars(select(Chunk.id).where(Chunk.collection_id == self.index.collection_id,
                                                               Chunk.document_id.in_(document_ids))))


def chunks_by_id(sessions: sessionmaker, chunk_ids: list[int]) -> list[Chunk]:
    """These chunks (those that still exist), in the order given."""
    with sessions() as session:
        found = {c.id: c for c in session.scalars(select(Chunk).where(Chunk.id.in_(chunk_ids)))}
    return [found[i] for i in chunk_ids if i in found]
