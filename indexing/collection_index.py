"""A collection's derived files (FAISS index + summary store) kept in step with the SQL catalog."""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from indexing.catalog import Chunk, Collection, Document
from indexing.faiss_store import FaissStore
from indexing.summary_store import SummaryStore
from model.errors import NotFoundError

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)


LOCK_FILE = "write.lock"


@contextlib.contextmanager
def folder_write_lock(folder: Path, *, shared: bool = False) -> Iterator[None]:
    """The cross-process lock of a collection's files: every writer holds it exclusively, a question
    shared while it reads (an flock on ``folder/write.lock``, released when the file closes, so a killed
    holder frees it; flock locks of two open files conflict within one process too)."""
    import fcntl

    folder.mkdir(parents=True, exist_ok=True)
    with (folder / LOCK_FILE).open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield


class CollectionIndex:
    """FAISS + summary vectors of one collection. SQL is the truth: on open, a FAISS index whose ids
    differ from the collection's chunk ids (say after a crash between the two writes) is rebuilt
    from the embeddings stored in SQL.

    Several processes may use one collection (the web app, the API, CLI commands): every write
    holds the collection's file lock (:meth:`writing`) and starts from the files as they are on disk,
    and every search first picks up an index another process saved, so none works on a stale copy
    or overwrites another's vectors."""

    def __init__(self, sessions: sessionmaker, collection: Collection, folder: Path, *, fresh: bool = False,
                 ann_threshold: int | None = None) -> None:
        """``fresh``: start from an empty FAISS index and skip reconciling (a rebuild fills it).
        ``ann_threshold``: chunks past which the FAISS index becomes approximate (:mod:`indexing.faiss_store`)."""
        self.sessions = sessions
        self.collection_id = collection.id
        self.folder = folder
        self.lock = threading.RLock()  # one writer at a time per collection
        self.faiss = FaissStore(folder, collection.embed_dim, fresh=fresh, ann_threshold=ann_threshold)
        self.summary_file = collection.summary_file
        self.summaries = SummaryStore(folder, kappa=collection.kappa, dim=collection.hidden_size,
                                      file_name=collection.summary_file)
        if not fresh:
            self.reconcile()

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """This process's lock and the cross-process file lock of the collection's folder; inside,
        the FAISS index is the one on disk."""
        with self.lock, folder_write_lock(self.folder):
            self.faiss.reload_if_changed()
            yield

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """A consistent view for one question: no writer (of any process) changes the FAISS index, the
        summary store or the chunks between its search, its SQL reads and its summary-vector reads, so
        a document deleted meanwhile is seen whole or not at all. (Same order as :meth:`writing`:
        this process's lock, then the file lock.)"""
        with self.lock, folder_write_lock(self.folder, shared=True):
            yield

    def is_empty(self) -> bool:
        """No chunk in the collection (nothing to retrieve)."""
        with self.sessions() as session:
            return session.scalar(select(Chunk.id).where(Chunk.collection_id == self.collection_id).limit(1)) is None

    def _chunk_ids(self, session: Session) -> list[int]:
        return list(session.scalars(select(Chunk.id).where(Chunk.collection_id == self.collection_id)))

    def reconcile(self) -> bool:
        """Rebuild the FAISS index from SQL if the two disagree; True when it did."""
        with self.writing(), self.sessions() as session:
            highest = session.scalar(select(func.max(Chunk.summary_row)).where(Chunk.collection_id == self.collection_id))
            if highest is not None and highest >= self.summaries.rows:
                raise NotFoundError(f"collection {self.collection_id}: its chunks reference summary row {highest} but "
                                    f"{self.summaries.path.name} holds {self.summaries.rows}: rebuild the collection "
                                    "(`lloco collections rebuild`)")
            if set(self._chunk_ids(session)) == self.faiss.ids():
                return False
            log.warning("FAISS index of collection %s is out of step with SQL: rebuilding it", self.collection_id)
            self._rebuild_faiss(session)
            return True

    def problems(self) -> list[str]:
        """Where SQL, the FAISS file on disk and the summary store disagree (empty when they agree):
        chunks without a vector, vectors without a chunk, summary rows missing or shared, ready
        documents without chunks. What the crash suite checks after every kill."""
        with self.writing(), self.sessions() as session:
            rows = session.execute(select(Chunk.id, Chunk.summary_row).where(Chunk.collection_id == self.collection_id)).all()
            empty = list(session.scalars(select(Document.filename).where(
                Document.collection_id == self.collection_id, Document.status == "ready",
                ~select(Chunk.id).where(Chunk.document_id == Document.id).exists())))
        ids, in_faiss, n_rows = {r.id for r in rows}, self.faiss.ids(), self.summaries.rows
        summary_rows = [r.summary_row for r in rows]
        out = []
        if missing := ids - in_faiss:
            out.append(f"{len(missing)} chunks without a FAISS vector (e.g. {sorted(missing)[:3]})")
        if orphans := in_faiss - ids:
            out.append(f"{len(orphans)} FAISS vectors without a chunk (e.g. {sorted(orphans)[:3]})")
        if beyond := [r for r in summary_rows if not 0 <= r < n_rows]:
            out.append(f"{len(beyond)} chunks point past the summary store's {n_rows} rows")
        if len(set(summary_rows)) != len(summary_rows):
            out.append("two chunks share a summary row")
        if empty:
            out.append(f"ready documents without chunks: {', '.join(empty[:3])}")
        return out

    def _embeddings(self, session: Session) -> tuple[list[int], np.ndarray | None]:
        """The collection's chunk ids and their exact embeddings, (n, dim) float32, as SQL holds them
        (None for an empty collection)."""
        import numpy as np

        rows = session.execute(select(Chunk.id, Chunk.embedding).where(Chunk.collection_id == self.collection_id)).all()
        vectors = np.stack([np.frombuffer(r.embedding, dtype=np.float32) for r in rows]) if rows else None
        return [r.id for r in rows], vectors

    def _rebuild_faiss(self, session: Session) -> None:
        ids, vectors = self._embeddings(session)
        self.faiss.reset()
        if ids:
            self.faiss.add(ids, vectors)
        self.faiss.save()

    def search(self, query: np.ndarray, k: int, *, ids: list[int] | None = None) -> list[tuple[int, float]]:
        """Top-k (chunk id, score); ``ids`` restricts the search to those chunks. An index another
        process saved since (documents it added or deleted) is read first."""
        with self.lock:
            self.faiss.reload_if_changed()
            return self.faiss.search(query, k, ids=ids)

    def add_chunks(self, session: Session, chunks: list[Chunk], embeddings: np.ndarray, summaries: np.ndarray) -> None:
        """Inside the caller's open transaction: store summary rows, insert chunks and their lexical
        postings, add to FAISS.

        ``embeddings``: (n, embed_dim) float32; ``summaries``: (n, kappa, d). The caller commits;
        if the commit fails, :meth:`discard` takes the vectors back out of FAISS.
        """
        from indexing.lexical import add_postings

        with self.writing():
            rows = self.summaries.append(summaries)  # fsynced before SQL can reference them
            for chunk, row, vector in zip(chunks, rows, embeddings, strict=True):
                chunk.summary_row = row
                chunk.embedding = vector.astype("float32").tobytes()
            session.add_all(chunks)
            session.flush()  # assigns the primary keys that are the FAISS ids
            add_postings(session, chunks)  # in the same transaction: SQL holds the lexical index too
            self.faiss.add([c.id for c in chunks], embeddings)
            if self.faiss.outgrown():  # ~4x the vectors its cells were trained on: train it again, exactly
                self.faiss.retrain(*self._embeddings(session))
            self.faiss.save()

    def discard(self, chunk_ids: list[int]) -> None:
        with self.writing():
            if chunk_ids and self.faiss.remove(chunk_ids):
                self.faiss.save()

    def delete_document(self, document_id: int) -> int:
        """Delete a document with its pages, chunks and vectors; return how many chunks went."""
        with self.writing(), self.sessions.begin() as session:
            found = session.execute(select(Chunk.id, Chunk.summary_row).where(Chunk.document_id == document_id)).all()
            ids = [r.id for r in found]
            session.execute(delete(Chunk).where(Chunk.document_id == document_id))
            session.execute(delete(Document).where(Document.id == document_id))
            self.faiss.remove(ids)
            self.faiss.save()
            self.summaries.erase([r.summary_row for r in found])
        return len(ids)

    def summary_vectors(self, rows: list[int]) -> np.ndarray:
        return self.summaries.get(rows)

    def destroy(self) -> None:
        """Remove the derived files (the SQL rows are deleted by the caller)."""
        shutil.rmtree(self.folder, ignore_errors=True)
