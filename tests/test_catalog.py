"""indexing/catalog.py: Alembic-made schema == the ORM models, cascades, uniqueness."""

from __future__ import annotations

import pytest
from sqlalchemy import func, inspect, select, text
from sqlalchemy.exc import IntegrityError

from indexing.catalog import Chunk, Collection, Document, Page, open_catalog
from indexing.schema import metadata


@pytest.fixture
def url(tmp_path):
    return f"sqlite:///{tmp_path / 'sub' / 'catalog.db'}"


@pytest.fixture
def sessions(url):
    return open_catalog(url)


def _collection(name: str = "papers") -> Collection:
    return Collection(name=name, decoder="tiny", embedder="hash-64", compressor="untrained", kappa=4, chunk_tokens=48,
                      chunk_overlap=8, embed_dim=64, hidden_size=64)


def _chunk(collection: Collection, ordinal: int = 0) -> Chunk:
    c = Chunk(ordinal=ordinal, page_start=1, page_end=1, char_start=0, char_end=11, text="hello world", n_tokens=2,
              embedding=b"\x00" * 16, summary_row=ordinal)
    c.collection_id = collection.id
    return c


def _counts(session) -> dict[str, int]:
    return {m.__tablename__: session.scalar(select(func.count()).select_from(m)) for m in (Collection, Document, Page, Chunk)}


def test_open_creates_schema_at_alembic_head(url, sessions):
    engine = sessions.kw["bind"]
    tables = set(inspect(engine).get_table_names())
    assert {"collections", "documents", "pages", "chunks", "alembic_version"} <= tables
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == ["0017"]


def test_head_revision_is_0017():
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from indexing.catalog import MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_heads() == ["0017"]


def test_migrated_schema_matches_the_models(sessions):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = sessions.kw["bind"]
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        diff = compare_metadata(context, metadata)
    assert diff == []


def test_compare_metadata_would_notice_a_difference(sessions):
    """Guard: the comparison above can fail (a dropped index is reported)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = sessions.kw["bind"]
    with engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_chunks_document_id"))
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert any(d[0] == "add_index" and d[1].name == "ix_chunks_document_id" for d in diff)


def test_sqlite_pragmas(sessions):
    with sessions() as s:
        assert s.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert s.execute(text("PRAGMA journal_mode")).scalar() == "wal"


def test_opening_twice_is_idempotent(url, sessions):
    with sessions.begin() as s:
        s.add(_collection("kept"))
    again = open_catalog(url)
    with again() as s:
        assert s.scalars(select(Collection.name)).all() == ["kept"]
        assert s.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    third = open_catalog(url)
    with third() as s:
        assert s.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0017"


def test_deleting_a_collection_cascades_in_sql(sessions):
    with sessions.begin() as s:
        a, b = _collection("a"), _collection("b")
        s.add_all([a, b])
        s.flush()
        for col, hashes in ((a, ["1" * 64, "2" * 64]), (b, ["3" * 64])):
            for h in hashes:
                doc = Document(collection=col, content_hash=h, filename=f"{h[0]}.pdf", source_path="/x", status="ready")
                doc.pages.extend([Page(page_no=1, char_offset=0, text="p1"), Page(page_no=2, char_offset=4, text="p2")])
                doc.chunks.extend([_chunk(col, 0), _chunk(col, 1)])
                s.add(doc)
        a_id = a.id
    with sessions() as s:
        assert _counts(s) == {"collections": 2, "documents": 3, "pages": 6, "chunks": 6}
    # a raw SQL delete: only the database's ON DELETE CASCADE (foreign_keys=ON) can remove the children
    with sessions.begin() as s:
        s.execute(text("DELETE FROM collections WHERE id = :id"), {"id": a_id})
    with sessions() as s:
        assert _counts(s) == {"collections": 1, "documents": 1, "pages": 2, "chunks": 2}
        assert s.scalars(select(Document.filename)).all() == ["3.pdf"]


def test_deleting_a_document_cascades_to_pages_and_chunks(sessions):
    with sessions.begin() as s:
        col = _collection()
        s.add(col)
        s.flush()
        for h in ("1" * 64, "2" * 64):
            doc = Document(collection=col, content_hash=h, filename=f"{h[0]}.pdf", source_path="/x", status="ready")
            doc.pages.append(Page(page_no=1, char_offset=0, text="p"))
            doc.chunks.extend([_chunk(col, 0), _chunk(col, 1), _chunk(col, 2)])
            s.add(doc)
    with sessions.begin() as s:
        s.execute(text("DELETE FROM documents WHERE content_hash = :h"), {"h": "1" * 64})
    with sessions() as s:
        assert _counts(s) == {"collections": 1, "documents": 1, "pages": 1, "chunks": 3}
    with sessions.begin() as s:  # the ORM path too
        s.delete(s.scalars(select(Document)).one())
    with sessions() as s:
        assert _counts(s) == {"collections": 1, "documents": 0, "pages": 0, "chunks": 0}


def test_orm_delete_of_collection(sessions):
    with sessions.begin() as s:
        col = _collection()
        s.add(col)
        s.flush()
        doc = Document(collection=col, content_hash="f" * 64, filename="f.pdf", source_path="/x", status="ready")
        doc.pages.append(Page(page_no=1, char_offset=0, text="p"))
        doc.chunks.append(_chunk(col))
        s.add(doc)
    with sessions.begin() as s:
        s.delete(s.scalars(select(Collection)).one())
    with sessions() as s:
        assert _counts(s) == {"collections": 0, "documents": 0, "pages": 0, "chunks": 0}


def test_foreign_keys_are_enforced(sessions):
    with pytest.raises(IntegrityError), sessions.begin() as s:
        s.add(Document(collection_id=12345, content_hash="e" * 64, filename="e.pdf", source_path="/x", status="ready"))


def test_content_hash_unique_per_collection(sessions):
    with sessions.begin() as s:
        a, b = _collection("a"), _collection("b")
        s.add_all([a, b])
        s.flush()
        s.add(Document(collection=a, content_hash="d" * 64, filename="one.pdf", source_path="/1", status="ready"))
        # the same bytes in another collection are fine
        s.add(Document(collection=b, content_hash="d" * 64, filename="one.pdf", source_path="/1", status="ready"))
        a_id = a.id
    with pytest.raises(IntegrityError, match="UNIQUE"), sessions.begin() as s:
        s.add(Document(collection_id=a_id, content_hash="d" * 64, filename="renamed.pdf", source_path="/2",
                       status="ready"))
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Document)) == 2


def test_collection_names_are_unique(sessions):
    with sessions.begin() as s:
        s.add(_collection("same"))
    with pytest.raises(IntegrityError), sessions.begin() as s:
        s.add(_collection("same"))


def test_defaults_and_ordering(sessions):
    with sessions.begin() as s:
        col = _collection()
        s.add(col)
        s.flush()
        doc = Document(collection=col, content_hash="c" * 64, filename="c.pdf", source_path="/c", status="failed",
                       error="boom")
        doc.pages.extend([Page(page_no=2, char_offset=5, text="two"), Page(page_no=1, char_offset=0, text="one")])
        doc.chunks.extend([_chunk(col, 1), _chunk(col, 0)])
        s.add(doc)
    with sessions() as s:
        doc = s.scalars(select(Document)).one()
        assert doc.created_at is not None and doc.collection.created_at is not None
        assert doc.size_bytes == 0 and doc.n_pages == 0 and doc.error == "boom"
        assert [p.page_no for p in doc.pages] == [1, 2]
        assert [c.ordinal for c in doc.chunks] == [0, 1]
        assert doc.collection.adapter_path is None


def test_ids_are_never_given_again_after_a_delete(service, tmp_path):
    """A document ingested after a delete must not take the deleted one's ids: an old chat's
    citation names a document and chunk id, which would then open the wrong document."""
    from sqlalchemy import select

    service.create_collection("c")
    for name in ("a.txt", "b.txt"):
        (tmp_path / name).write_text(f"File {name} is about lighthouses and their keepers. " * 20)
    [first] = service.ingest("c", [tmp_path / "a.txt"])
    with service.sessions() as session:
        old_chunks = set(session.scalars(select(Chunk.id)))
    service.delete_document("c", "a.txt")
    [second] = service.ingest("c", [tmp_path / "b.txt"])
    with service.sessions() as session:
        new_chunks = set(session.scalars(select(Chunk.id)))
    assert second.document_id > first.document_id and min(new_chunks) > max(old_chunks)


def test_migration_0009_rebuilds_tables_without_losing_a_row(catalog_at):
    from indexing.catalog import open_catalog

    url, engine = catalog_at("0008")
    with engine.begin() as conn:  # a document with a page and a chunk under collection 'old'
        conn.execute(text("INSERT INTO documents (collection_id, content_hash, filename, source_path, size_bytes, "
                          "n_pages, status, created_at) VALUES (1, 'h', 'a.txt', '/a.txt', 3, 1, 'ready', '2024-01-01')"))
        conn.execute(text("INSERT INTO pages (document_id, page_no, char_offset, text) VALUES (1, 1, 0, 'abc')"))
        conn.execute(text("INSERT INTO chunks (document_id, collection_id, ordinal, page_start, page_end, char_start, "
                          "char_end, text, n_tokens, embedding, summary_row) VALUES (1, 1, 0, 1, 1, 0, 3, 'abc', 1, x'00', 0)"))
    engine.dispose()
    sessions = open_catalog(url)
    with sessions() as s:
        counts = [s.execute(text(f"SELECT count(*) FROM {t}")).scalar() for t in ("collections", "documents", "pages", "chunks")]
        assert counts == [1, 1, 1, 1]  # rebuilding a parent table did not cascade-delete its children
        assert "AUTOINCREMENT" in s.execute(text("SELECT sql FROM sqlite_master WHERE name = 'chunks'")).scalar()
        assert s.execute(text("PRAGMA foreign_keys")).scalar() == 1  # enforcement is on again
    with sessions.begin() as s:
        s.execute(text("DELETE FROM documents"))  # and cascades still work
    with sessions() as s:
        assert s.execute(text("SELECT count(*) FROM chunks")).scalar() == 0
