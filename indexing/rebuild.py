"""Rebuild a collection with the current models and chunking, from the page texts stored in SQL.

Needed when the decoder, embedder, compressor, kappa or chunking change (a trained compressor,
say): vectors made by different models cannot be mixed. Every ready document is re-chunked,
re-embedded and re-compressed in memory first; then one transaction swaps the chunks, rewrites the
summary store (atomic file replace, compacted), rebuilds the FAISS index and records the new
settings on the collection. Failed documents are kept as they are.
"""

from __future__ import annotations

import uuid

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, select

from indexing.catalog import Chunk, Collection, Document, Page
from indexing.chunking import chunk_pages
from indexing.collection_index import CollectionIndex
from indexing.pipeline import Progress, compress_reporting, embed_reporting
from indexing.summary_store import STORE_FILE

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from sqlalchemy.orm import sessionmaker

    from indexing.embedder import Embedder
    from indexing.pipeline import ProgressCallback, Stage
    from model.compressor import Compressor


@dataclass(frozen=True)
class RebuildResult:
    documents: int
    chunks: int


def rebuild_collection(sessions: sessionmaker, target: Collection, folder: Path, *, embedder: Embedder,
                       compressor: Compressor, encode: Callable[[str], list[int]], embed_batch_size: int = 32,
                       compress_batch_size: int = 8, progress: ProgressCallback | None = None,
                       ann_threshold: int | None = None) -> tuple[CollectionIndex, RebuildResult]:
    """Re-derive every chunk of ``target`` (a detached row holding the *new* settings) with the
    given embedder, compressor and tokenizer. Returns a fresh index for the rebuilt collection.
    """
    import numpy as np

    from indexing.lexical import add_postings

    report = progress or (lambda _p: None)
    with sessions() as session:
        docs = session.execute(select(Document.id, Document.filename, func.coalesce(func.sum(func.length(Page.text)), 0))
                               .outerjoin(Page, Page.document_id == Document.id)
                               .where(Document.collection_id == target.id, Document.status == "ready")
                               .group_by(Document.id, Document.filename).order_by(Document.id)).all()
    sizes = [int(chars) for _id, _name, chars in docs]  # a document's text length: its "bytes" for the ETA
    new_chunks: list[Chunk] = []
    embeddings, summaries = [], []
    for i, (doc_id, filename, _chars) in enumerate(docs):
        def on_stage(stage: Stage, done: int = 0, total: int = 0, i: int = i, filename: str = filename) -> None:
            report(Progress(filename, i, len(docs), stage, done, total, sizes[i], sum(sizes[i + 1:])))

        on_stage("chunk")
        with sessions() as session:
            pages = list(session.scalars(select(Page.text).where(Page.document_id == doc_id).order_by(Page.page_no)))
        chunks = chunk_pages(pages, encode=encode, chunk_tokens=target.chunk_tokens, overlap=target.chunk_overlap)
        embeddings.append(embed_reporting(embedder, [c.embed_text for c in chunks], batch_size=embed_batch_size,
                                          report=on_stage))
        summaries.extend(compress_reporting(compressor, [c.token_ids for c in chunks], batch_size=compress_batch_size,
                                            report=on_stage))
        new_chunks.extend(Chunk(document_id=doc_id, collection_id=target.id, ordinal=c.ordinal, page_start=c.page_start,
                                page_end=c.page_end, char_start=c.char_start, char_end=c.char_end, text=c.text,
                                n_tokens=len(c.token_ids)) for c in chunks)
        on_stage("done", len(chunks), len(chunks))
    dim, kappa, hidden = target.embed_dim, target.kappa, target.hidden_size
    all_embeddings = np.concatenate(embeddings) if embeddings else np.zeros((0, dim), dtype=np.float32)  # (n, dim)
    all_summaries = np.stack(summaries) if summaries else np.zeros((0, kappa, hidden), dtype=np.float16)  # (n, kappa, d)
    with sessions.begin() as session:
        session.execute(delete(Chunk).where(Chunk.collection_id == target.id))
        row = session.get(Collection, target.id)
        for field in ("decoder", "embedder", "compressor", "kappa", "chunk_tokens", "chunk_overlap", "embed_dim", "hidden_size"):
            setattr(row, field, getattr(target, field))
        old_file = folder / (row.summary_file or STORE_FILE)
        row.summary_file = f"summaries-{uuid.uuid4().hex[:12]}.f16"  # a new file: the old one stays until the commit
        session.flush()
        index = CollectionIndex(sessions, row, folder, fresh=True, ann_threshold=ann_threshold)
        with index.writing():  # no other process writes the collection's files meanwhile
            index.faiss.reset()  # fresh: whatever is on disk is replaced, not merged
            rows = index.summaries.replace_all(all_summaries)
            for chunk, summary_row, vector in zip(new_chunks, rows, all_embeddings, strict=True):
                chunk.summary_row, chunk.embedding = summary_row, vector.astype("float32").tobytes()
            session.add_all(new_chunks)
            session.flush()  # chunk ids are the FAISS ids
            add_postings(session, new_chunks)
            index.faiss.add([c.id for c in new_chunks], all_embeddings)
            index.faiss.save()
    # committed: the chunks and their summary file switched together; the old file is no one's now.
    # (Killed before the commit, SQL still names the old file, untouched, and the next open rebuilds
    # FAISS from SQL: the collection reads as before the rebuild.)
    old_file.unlink(missing_ok=True)
    for stray in folder.glob("summaries-*.f16"):  # new files of rebuilds killed before their commit
        if stray.name != row.summary_file:
            stray.unlink(missing_ok=True)
    return index, RebuildResult(len(docs), len(new_chunks))
