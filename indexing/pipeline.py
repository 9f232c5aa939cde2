"""Ingestion: parse -> chunk -> embed -> compress -> index, one file at a time, all or nothing.

With ``prefetch`` the next file is parsed on a thread while the current one is chunked, embedded,
compressed and written (parsing is Python and pdfplumber; compression is torch, which releases the
GIL), so a folder's parsing hides behind its compression.

Each document is prepared entirely in memory, then written in one SQL transaction together with
its FAISS and summary-store entries; a bad file, an exception or Ctrl-C leaves the collection as
it was before that document. Bad files are recorded with status 'failed' and the reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from sqlalchemy import delete, select, update

from indexing.catalog import Chunk, Document, Page
from indexing.chunking import Chunk as DocChunk
from indexing.chunking import chunk_pages, join_pages
from indexing.loaders import (DocumentError, LoadedDocument, clean_filename, expand_paths, file_sha256,
                              load_document)

if TYPE_CHECKING:
    import numpy as np
    from sqlalchemy.orm import sessionmaker

    from indexing.collection_index import CollectionIndex
    from indexing.embedder import Embedder
    from model.compressor import Compressor

Stage = Literal["parse", "chunk", "embed", "compress", "index", "done"]
STAGES: tuple[Stage, ...] = ("parse", "chunk", "embed", "compress", "index", "done")
WORK_STAGES = STAGES[:-1]  # the stages that take time, in order (a job's progress is measured over them)


@dataclass(frozen=True)
class Progress:
    """One progress event: file ``file_index`` of ``n_files`` reached ``stage``."""

    file: str
    file_index: int
    n_files: int
    stage: Stage
    done: int = 0  # units done within the stage (chunks), when it has units
    total: int = 0
    file_bytes: int = 0  # this file's size (a rebuilt document: its text's length)
    later_bytes: int = 0  # the files after it, together (what a time-left estimate scales by)


ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True)
class IngestResult:
    path: str
    status: Literal["ingested", "skipped", "failed"]
    document_id: int | None = None
    error: str | None = None
    n_pages: int = 0
    n_chunks: int = 0
    seconds: float = 0.0
    ocr_pages: tuple[int, ...] = ()  # read by OCR (no usable text layer)
    skipped_pages: tuple[int, ...] = ()  # no usable text layer and nothing OCR could read
    table_pages: tuple[int, ...] = ()  # tables read as Markdown


@dataclass(frozen=True)
class Derived:
    """A document prepared for the catalog, in memory: its pages, chunks and their vectors."""

    doc: LoadedDocument
    chunks: list[DocChunk]
    embeddings: np.ndarray  # (n_chunks, embed_dim) float32, normalized
    summaries: np.ndarray  # (n_chunks, kappa, d) float16


@dataclass(frozen=True)
class Deriver:
    """What turns a file into a :class:`Derived` document: the models and the chunking. The same on
    the machine that writes the catalog and on a Ray worker (`app.core.ray_ingest`), so both
    engines derive the same chunks and vectors."""

    embedder: Embedder
    compressor: Compressor
    encode: Callable[[str], list[int]]
    chunk_tokens: int
    chunk_overlap: int
    max_bytes: int
    pdf_tables: bool = True  # read tabular PDF pages' tables as Markdown (Settings.pdf_tables)
    embed_batch_size: int = 32
    compress_batch_size: int = 8

    def load(self, path: Path) -> LoadedDocument:
        """Parse one file (:class:`DocumentError` for a bad one)."""
        return load_document(path, max_bytes=self.max_bytes, tables=self.pdf_tables)

    def derive(self, doc: LoadedDocument, report: Callable[..., None] = lambda *_a: None) -> Derived:
        """Chunk, embed and compress a parsed document (:class:`DocumentError` when it has no text to
        index); ``report(stage, done, total)`` as it goes."""
        import numpy as np

        report("chunk")
        chunks = chunk_pages(doc.pages, encode=self.encode, chunk_tokens=self.chunk_tokens, overlap=self.chunk_overlap)
        if not chunks:
            raise DocumentError(f"{doc.filename}: no text to index")
        embeddings = embed_reporting(self.embedder, [c.embed_text for c in chunks], batch_size=self.embed_batch_size,
                                     report=report)  # (n, dim)
        summaries = compress_reporting(self.compressor, [c.token_ids for c in chunks],
                                       batch_size=self.compress_batch_size, report=report)
        return Derived(doc, chunks, embeddings, np.stack(summaries))  # summaries (n, kappa, d)


def embed_reporting(embedder: Embedder, texts: list[str], *, batch_size: int,
                    report: Callable[..., None]) -> np.ndarray:
    """Embed ``texts`` a few batches at a time, reporting ``("embed", done, total)`` before each step
    (a 10 MB file's 10,000 chunks must not sit at "embed 0/10000" for minutes); (n, dim) float32."""
    import numpy as np

    step, parts = batch_size * 4, []
    for start in range(0, len(texts), step):
        report("embed", start, len(texts))
        parts.append(embedder.embed(texts[start:start + step], batch_size=batch_size))  # (step, dim)
    return np.concatenate(parts) if parts else np.zeros((0, embedder.dim), dtype=np.float32)


def compress_reporting(compressor: Compressor, token_ids: list[list[int]], *, batch_size: int,
                       report: Callable[..., None]) -> list[np.ndarray]:
    """Compress chunks a batch at a time, reporting ``("compress", done, total)`` before each batch and at
    the end (the slow stage: its pace is what a time-left estimate needs first); one (kappa, d) float16
    array per chunk."""
    out, step = [], batch_size
    for start in range(0, len(token_ids), step):
        report("compress", start, len(token_ids))
        out.extend(v.numpy() for v in compressor.compress(token_ids[start:start + step], batch_size=batch_size))
    report("compress", len(token_ids), len(token_ids))
    return out


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


@dataclass
class Pipeline:
    """One collection's ingestion: each file derived (:class:`Deriver`, here or on a Ray worker), then
    written here. ``deriver`` None: this pipeline only writes documents derived elsewhere."""

    index: CollectionIndex
    deriver: Deriver | None = None
    prefetch: bool = True  # parse the next file on a thread while this one is derived and written

    def ingest(self, paths: list[Path], *, progress: ProgressCallback | None = None) -> list[IngestResult]:
        """Ingest files and folders; returns one result per file, in order."""
        if self.deriver is None:
            raise ValueError("this pipeline has no deriver: it writes documents derived elsewhere")
        files = expand_paths(paths)
        sizes = [_size(path) for path in files]
        said = progress or (lambda _p: None)

        def progress_of(i: int) -> Callable[[Stage, int, int], None]:
            later = sum(sizes[i + 1:])
            return lambda stage, done=0, total=0: said(Progress(files[i].name, i, len(files), stage, done, total,
                                                                sizes[i], later))

        if not self.prefetch or len(files) < 2:
            return [self._ingest_one(path, progress_of(i), None) for i, path in enumerate(files)]
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lloco-parse")
        try:
            ahead = pool.submit(self._load, files[0])
            results = []
            for i, path in enumerate(files):
                parsed, ahead = ahead, (pool.submit(self._load, files[i + 1]) if i + 1 < len(files) else None)
                results.append(self._ingest_one(path, progress_of(i), parsed))
            return results
        finally:
            # an interrupted ingest does not wait for the parse ahead of it
            pool.shutdown(wait=False, cancel_futures=True)

    def _load(self, path: Path) -> LoadedDocument | DocumentError:
        try:
            return self.deriver.load(path)
        except DocumentError as exc:
            return exc

    def _ingest_one(self, path: Path, report: Callable[..., None], parsed: Future | None) -> IngestResult:
        """One file: ``report(stage, done, total)`` says where it stands."""
        started = time.perf_counter()
        report("parse")
        doc = parsed.result() if parsed is not None else self._load(path)  # (re-raises what parsing raised)
        if isinstance(doc, DocumentError):
            return self.failed(path, str(doc), started, report)
        existing = self.existing(doc.content_hash)
        if existing is not None and existing.status == "ready":
            report("done")
            return IngestResult(str(path), "skipped", existing.id, n_pages=existing.n_pages,
                                seconds=time.perf_counter() - started)
        try:
            derived = self.deriver.derive(doc, report)
        except DocumentError as exc:
            return self.failed(path, str(exc), started, report)
        return self.write(derived, started, report)

    def failed(self, path: Path, error: str, started: float, report: Callable[..., None]) -> IngestResult:
        """Record a file that could not be ingested, with the reason."""
        doc_id = self._record_failure(path, error)
        report("done")
        return IngestResult(str(path), "failed", doc_id, error, seconds=time.perf_counter() - started)

    def write(self, derived: Derived, started: float, report: Callable[..., None]) -> IngestResult:
        """Write a derived document to the catalog, FAISS and the summary store, all or nothing."""
        doc, n = derived.doc, len(derived.chunks)
        report("index", 0, n)
        doc_id = self._write(doc, derived.chunks, derived.embeddings, derived.summaries)
        report("done", n, n)
        return IngestResult(str(doc.path), "ingested", doc_id, n_pages=len(doc.pages), n_chunks=n,
                            seconds=time.perf_counter() - started, ocr_pages=doc.ocr_pages,
                            skipped_pages=doc.skipped_pages, table_pages=doc.table_pages)

    def existing(self, content_hash: str) -> Document | None:
        """The collection's document with these bytes, if any (ready, failed or queued)."""
        with self.index.sessions() as session:
            return session.scalars(select(Document).where(Document.collection_id == self.index.collection_id,
                                                          Document.content_hash == content_hash)).first()

    def _write(self, doc: LoadedDocument, chunks, embeddings, summaries) -> int:
        added: list[Chunk] = []
        try:
            with self.index.lock, self.index.sessions.begin() as session:
                # failed earlier attempts at these bytes or at this file, or its queued row, are replaced by this one
                stale = session.scalars(select(Document).where(
                    Document.collection_id == self.index.collection_id, Document.status.in_(("failed", "queued")),
                    (Document.content_hash == doc.content_hash) | (Document.source_path == str(doc.path.resolve()))))
                for row in stale:
                    session.delete(row)
                session.flush()
                row = Document(collection_id=self.index.collection_id, content_hash=doc.content_hash,
                               filename=doc.filename, source_path=str(doc.path.resolve()), size_bytes=doc.size_bytes,
                               n_pages=len(doc.pages), status="ready")
                session.add(row)
                session.flush()
                _, offsets = join_pages(doc.pages)
                session.add_all(Page(document_id=row.id, page_no=n + 1, char_offset=off, text=text,
                                     ocr=n + 1 in doc.ocr_pages)
                                for n, (text, off) in enumerate(zip(doc.pages, offsets, strict=True)))
                added = [Chunk(document_id=row.id, collection_id=self.index.collection_id, ordinal=c.ordinal,
                               page_start=c.page_start, page_end=c.page_end, char_start=c.char_start,
                               char_end=c.char_end, text=c.text, n_tokens=len(c.token_ids)) for c in chunks]
                self.index.add_chunks(session, added, embeddings, summaries)
                return row.id
        except BaseException:
            # the transaction rolled back: take this document's vectors back out of FAISS
            self.index.discard([c.id for c in added if c.id is not None])
            raise

    def _record_failure(self, path: Path, error: str) -> int | None:
        """A 'failed' catalog row for a bad file (unless the same bytes are already ingested)."""
        if not path.is_file():
            return None
        digest = file_sha256(path)
        with self.index.lock, self.index.sessions.begin() as session:
            row = session.scalars(select(Document).where(Document.collection_id == self.index.collection_id,
                                                         Document.content_hash == digest)).first()
            if row is not None and row.status == "ready":
                return row.id
            if row is None:
                row = Document(collection_id=self.index.collection_id, content_hash=digest,
                               filename=clean_filename(path.name), source_path=str(path.resolve()), status="failed")
                session.add(row)
            row.size_bytes, row.error, row.status = path.stat().st_size, error, "failed"
            session.flush()
            return row.id


def queue_documents(sessions: sessionmaker, collection_id: int, paths: list[Path]) -> list[int]:
    """A 'queued' document row for each file of ``paths`` (folders expanded) that the collection does not
    hold ready yet, so an upload is listed from the moment it is queued; the ids of the rows. Files that
    cannot be read get no row here: their ingestion records why."""
    out = []
    for path in expand_paths(paths):
        if not path.is_file():
            continue
        digest = file_sha256(path)
        with sessions.begin() as session:
            row = session.scalars(select(Document).where(Document.collection_id == collection_id,
                                                         Document.content_hash == digest)).first()
            if row is not None and row.status == "ready":
                continue
            if row is None:
                row = Document(collection_id=collection_id, content_hash=digest, filename="", source_path="")
                session.add(row)
            row.filename = clean_filename(path.name)
            row.source_path, row.size_bytes, row.status, row.error = str(path.resolve()), path.stat().st_size, "queued", None
            session.flush()
            out.append(row.id)
    return out


def settle_queued(sessions: sessionmaker, document_ids: list[int], *, error: str | None) -> int:
    """Rows among ``document_ids`` still 'queued' once their job has ended without ingesting them:
    removed (``error`` None: the job was cancelled) or marked failed with ``error``. How many."""
    if not document_ids:
        return 0
    still = (Document.id.in_(document_ids)) & (Document.status == "queued")
    with sessions.begin() as session:
        if error is None:
            return session.execute(delete(Document).where(still)).rowcount
        return session.execute(update(Document).where(still).values(status="failed", error=error[:5000])).rowcount
