"""The catalog reads and writes the service layer needs, so that `app/core/service.py` orchestrates and
holds no SQL: collection listing and counts, documents with their chunk counts, content hashes
(the kept originals), adapter attachment, and the pages full-context mode reads."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from indexing.catalog import Chunk, Collection, Document, Page, collection_named, row_by_id


def collection_row(sessions: sessionmaker, name: str) -> Collection:
    """The collection named ``name`` (detached), or NotFoundError."""
    with sessions() as session:
        return collection_named(session, name)


def insert_collection(sessions: sessionmaker, row: Collection) -> bool:
    """Store a new collection row; False when the name is taken."""
    try:
        with sessions.begin() as session:
            session.add(row)
    except IntegrityError:
        return False
    return True


def collection_names(sessions: sessionmaker) -> list[str]:
    with sessions() as session:
        return list(session.scalars(select(Collection.name).order_by(Collection.name)))


def collection_counts(sessions: sessionmaker, collection_id: int) -> tuple[dict[str, tuple[int, int]], int]:
    """({document status: (documents, bytes)}, chunks) of one collection."""
    with sessions() as session:
        docs = session.execute(select(Document.status, func.count(), func.coalesce(func.sum(Document.size_bytes), 0))
                               .where(Document.collection_id == collection_id).group_by(Document.status)).all()
        n_chunks = session.scalar(select(func.count()).select_from(Chunk).where(Chunk.collection_id == collection_id))
    return {status: (int(n), int(size)) for status, n, size in docs}, int(n_chunks or 0)


def delete_collection_rows(sessions: sessionmaker, collection_id: int) -> set[str]:
    """Delete a collection (its documents, chunks and chats cascade); the content hashes it held."""
    with sessions.begin() as session:
        hashes = set(session.scalars(select(Document.content_hash).where(Document.collection_id == collection_id)))
        session.delete(session.get(Collection, collection_id))
    return hashes


def set_adapter_path(sessions: sessionmaker, collection_id: int, path: str | None) -> None:
    with sessions.begin() as session:
        session.get(Collection, collection_id).adapter_path = path


def set_thresholds(sessions: sessionmaker, collection_id: int, thresholds: str | None) -> None:
    with sessions.begin() as session:
        session.get(Collection, collection_id).thresholds = thresholds


def content_hashes(sessions: sessionmaker, document_ids: list[int]) -> dict[int, str]:
    with sessions() as session:
        return dict(session.execute(select(Document.id, Document.content_hash).where(Document.id.in_(document_ids))).all())


def hashes_in_use(sessions: sessionmaker, hashes: set[str]) -> set[str]:
    """Those of ``hashes`` that some document (of any collection) still has."""
    with sessions() as session:
        return set(session.scalars(select(Document.content_hash).where(Document.content_hash.in_(hashes))))


def documents_with_chunks(sessions: sessionmaker, collection_id: int) -> list[tuple[Document, int]]:
    """A collection's documents in id order, each with its number of chunks."""
    with sessions() as session:
        counts = dict(session.execute(select(Chunk.document_id, func.count()).where(Chunk.collection_id == collection_id)
                                      .group_by(Chunk.document_id)).all())
        docs = session.scalars(select(Document).where(Document.collection_id == collection_id).order_by(Document.id)).all()
    return [(d, int(counts.get(d.id, 0))) for d in docs]


def collection_of_document(sessions: sessionmaker, document_id: int) -> str | None:
    with sessions() as session:
        return session.scalar(select(Collection.name).join(Document, Document.collection_id == Collection.id)
                              .where(Document.id == document_id))


def document_row(sessions: sessionmaker, document_id: int) -> Document | None:
    with sessions() as session:
        return row_by_id(session, Document, document_id)


def document_page_texts(sessions: sessionmaker, document_id: int) -> list[str]:
    """A document's pages' text, in page order (what full-context mode reads)."""
    with sessions() as session:
        return list(session.scalars(select(Page.text).where(Page.document_id == document_id).order_by(Page.page_no)))
