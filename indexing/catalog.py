"""The SQL catalog (SQLAlchemy 2): the source of truth for collections, documents, pages and chunks.

The schema is created and upgraded by the Alembic migrations in ``indexing/migrations``; a chunk's
primary key is also its FAISS id, and its retrieval embedding is kept here so the FAISS index can
always be rebuilt from SQL alone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, TypeVar

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    false,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, sessionmaker

from model.errors import NotFoundError

DocStatus = Literal["queued", "ready", "failed"]  # queued: its ingestion job has not run yet
MIGRATIONS = Path(__file__).with_name("migrations")


# The largest id any door takes: the catalog's ids are 64-bit, and JSON clients hold integers exactly
# up to 2**53 - 1 (JavaScript's Number.MAX_SAFE_INTEGER; a float near 2**63 rounds past the catalog's).
# A larger one names nothing (not found, or refused as malformed), never an overflow in the driver.
MAX_ID = 2**53 - 1
T = TypeVar("T")


def id_or_name(ref: int | str) -> int | str:
    """A reference to a row by id (an int, or ASCII digits, in range) or else by name; digits out of
    the id range name nothing and are looked up as a name (so: not found)."""
    if isinstance(ref, int):
        return ref
    if ref.isascii() and ref.isdigit() and 1 <= int(ref) <= MAX_ID:
        return int(ref)
    return ref


def row_by_id(session: Session, model: type[T], row_id: int) -> T | None:
    """``session.get(model, row_id)``, or None for an id no row can have (below 1, past :data:`MAX_ID`:
    a driver would overflow on it)."""
    if isinstance(row_id, bool) or not isinstance(row_id, int) or not 1 <= row_id <= MAX_ID:
        return None
    return session.get(model, row_id)


def utc_now() -> datetime:
    """Now in UTC, naive (what every timestamp column of the catalog stores, on SQLite and PostgreSQL)."""
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class Collection(Base):
    """A set of documents indexed with one embedder, decoder, compressor and chunking."""

    __tablename__ = "collections"
    __table_args__ = {"sqlite_autoincrement": True}  # ids never given again (migration 0009)
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    decoder: Mapped[str] = mapped_column(String(500))
    embedder: Mapped[str] = mapped_column(String(500))
    compressor: Mapped[str] = mapped_column(String(500))  # the compressor's ident
    kappa: Mapped[int] = mapped_column(Integer)
    chunk_tokens: Mapped[int] = mapped_column(Integer)
    chunk_overlap: Mapped[int] = mapped_column(Integer)
    embed_dim: Mapped[int] = mapped_column(Integer)
    hidden_size: Mapped[int] = mapped_column(Integer)
    adapter_path: Mapped[str | None] = mapped_column(String(1000), default=None)
    # per mode, the confidences that decline an answer and mark it supported, as JSON
    # (app.core.confidence.thresholds_json); None until `lloco collections calibrate`
    thresholds: Mapped[str | None] = mapped_column(Text, default=None)
    # the summary store's file in the collection's folder; a rebuild writes a new one and switches to it
    # in the same transaction as the new chunks, so a crash leaves the old pair intact (None: summaries.f16)
    summary_file: Mapped[str | None] = mapped_column(String(100), default=None)
    documents: Mapped[list[Document]] = relationship(back_populates="collection", cascade="all, delete-orphan",
                                                     passive_deletes=True)


class Document(Base):
    """One file in a collection, keyed by the sha256 of its bytes."""

    __tablename__ = "documents"
    __table_args__ = (UniqueConstraint("collection_id", "content_hash", name="uq_document_hash"),
                      {"sqlite_autoincrement": True})
    id: Mapped[int] = mapped_column(primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), index=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(500))
    source_path: Mapped[str] = mapped_column(String(2000))
    size_bytes: Mapped[int] = mapped_column(Integer, default=0)
    n_pages: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(20))
    error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    collection: Mapped[Collection] = relationship(back_populates="documents")
    pages: Mapped[list[Page]] = relationship(cascade="all, delete-orphan", passive_deletes=True, order_by="Page.page_no")
    chunks: Mapped[list[Chunk]] = relationship(cascade="all, delete-orphan", passive_deletes=True, order_by="Chunk.ordinal")


class Page(Base):
    """A page's extracted text; ``char_offset`` places it in the document text."""

    __tablename__ = "pages"
    __table_args__ = {"sqlite_autoincrement": True}
    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    page_no: Mapped[int] = mapped_column(Integer)  # 1-based
    char_offset: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    ocr: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())  # read by OCR (0011)


class Chunk(Base):
    """A span of a document; ``id`` is its FAISS id, ``summary_row`` its row in the summary store."""

    __tablename__ = "chunks"
    __table_args__ = {"sqlite_autoincrement": True}
    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), index=True)
    ordinal: Mapped[int] = mapped_column(Integer)
    page_start: Mapped[int] = mapped_column(Integer)
    page_end: Mapped[int] = mapped_column(Integer)
    char_start: Mapped[int] = mapped_column(Integer)
    char_end: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    n_tokens: Mapped[int] = mapped_column(Integer)
    n_terms: Mapped[int | None] = mapped_column(Integer, default=None)  # length in lexical terms (BM25; 0010)
    embedding: Mapped[bytes] = mapped_column(LargeBinary)  # float32 retrieval vector
    summary_row: Mapped[int] = mapped_column(Integer)
    document: Mapped[Document] = relationship(back_populates="chunks")


def missing_collection(name: str) -> NotFoundError:
    """The error for a collection that does not exist (or that the asker may not see: the same words)."""
    return NotFoundError(f"no collection named {name!r} (see `lloco collections list`)")


def collection_named(session: Session, name: str) -> Collection:
    """The collection row called ``name``, or :func:`missing_collection`."""
    row = session.scalars(select(Collection).where(Collection.name == name)).first()
    if row is None:
        raise missing_collection(name)
    return row


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")  # ON DELETE CASCADE needs it
    cursor.execute("PRAGMA journal_mode=WAL")  # the UI reads while an ingest writes
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets foreign keys, WAL and a busy timeout."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def busy_message(exc: BaseException) -> str | None:
    """A plain message when ``exc`` says the catalog stayed locked by another writer past the busy
    timeout (SQLite's "database is locked"); None for any other error."""
    from sqlalchemy.exc import OperationalError

    if isinstance(exc, OperationalError) and "database is locked" in str(exc.orig if exc.orig else exc):
        return ("the catalog is locked by another process writing to it (for over 30 s): nothing was changed; "
                "try again when it finishes")
    return None


def _alembic_config():  # noqa: ANN202 - alembic.config.Config, imported lazily
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Create or upgrade the schema to ``revision`` (default: the newest Alembic revision).

    On SQLite the migrations run with foreign-key enforcement off (the pragma only takes effect
    outside a transaction): a migration that rebuilds a table (Alembic batch mode) drops the old one,
    and with enforcement on that drop would cascade-delete its children's rows. The foreign keys are
    checked once the migrations committed, and enforcement is back on for the connection."""
    from alembic import command

    config = _alembic_config()
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as connection:
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        try:
            with connection.begin():
                config.attributes["connection"] = connection
                command.upgrade(config, revision)
            if sqlite and (broken := connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()):
                raise RuntimeError(f"the catalog's foreign keys are broken after its migration: {broken[:5]}")
        finally:
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()


def known_revisions() -> list[str]:
    """This code's migration revisions, oldest first (the last is the head)."""
    from alembic.script import ScriptDirectory

    return [s.revision for s in reversed(list(ScriptDirectory.from_config(_alembic_config()).walk_revisions()))]


def open_catalog(url: str) -> sessionmaker:
    """Engine + migrations + a session factory for the catalog at ``url``."""
    engine = make_engine(url)
    upgrade(engine)
    return sessionmaker(engine, expire_on_commit=False)

