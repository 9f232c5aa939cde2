"""Lexical (BM25) and hybrid retrieval (issue 13; indexing/lexical.py, migration 0010): terms keep
numbers whole; the postings live in SQL beside the chunks, so they follow every ingest, delete and
rebuild (BM25 and FAISS agree on which chunks exist); BM25 finds the exact figure; reciprocal rank
fusion; the ``retrieval`` setting reaches every mode."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from indexing import lexical
from indexing.catalog import Chunk

FIGURES = {
    "q1.txt": "Organic revenue grew 14.3% in the first quarter, led by beverages in North America. ",
    "q2.txt": "Organic revenue grew 2.5% in the second quarter as snacks volumes slowed in Europe. ",
    "staff.txt": "The company employed 1,234 people at its Purchase, New York headquarters. ",
}


@pytest.fixture
def service(any_backend_service):
    """On SQLite and on PostgreSQL (where a server is set)."""
    return any_backend_service


@pytest.fixture
def filled(service, tmp_path):
    service.create_collection("c")
    paths = []
    for name, body in FIGURES.items():
        (tmp_path / name).write_text(body * 6)
        paths.append(tmp_path / name)
    service.ingest("c", paths)
    return service


def _chunk_sets(service):
    with service.sessions() as session:
        chunks = set(session.scalars(select(Chunk.id)))
        posted = set(session.scalars(select(lexical.Term.chunk_id).distinct()))
    index = service.answerer("c", "rag").index if chunks else None
    return chunks, posted, (index.faiss.ids() if index else set())


def test_terms_keep_numbers_whole_and_drop_stopwords():
    assert lexical.terms("The revenue grew 14.3% to $1,234.5 million in Q1 2023.") == \
        ["revenue", "grew", "14.3", "1234.5", "million", "q", "1", "2023"]
    assert lexical.terms("Café Müller's roses") == ["café", "müller's", "roses"]
    assert lexical.terms("the of and") == []


def test_reciprocal_rank_fusion_on_a_known_case():
    fused = lexical.fuse([[(1, 0.9), (2, 0.8), (3, 0.1)], [(3, 7.0), (1, 5.0)]], 3, c=60)
    # 1: 1/61 + 1/62; 3: 1/63 + 1/61; 2: 1/62
    assert [i for i, _ in fused] == [1, 3, 2]
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 62)


def test_bm25_finds_the_exact_figure(filled):
    bm25 = _with(filled, "bm25")
    for question, expected in (("organic revenue growth 14.3", "q1.txt"), ("grew 2.5 percent", "q2.txt"),
                               ("how many people 1,234", "staff.txt")):
        [(citation, _text)] = bm25.retrieve("c", question, top_k=1)
        assert citation.document == expected, question


def _with(service, mode):
    from app.core.service import LlocoService

    return LlocoService(service.settings.model_copy(update={"retrieval": mode}), decoder=service.decoder,
                        embedder=service.embedder)


def test_every_mode_retrieves_with_the_setting(filled):
    hybrid = _with(filled, "hybrid")
    for mode in ("rag", "lloco", "full"):
        answerer = hybrid.answerer("c", mode)
        assert answerer.retrieval == "hybrid"
        hits = answerer.retrieve("organic revenue growth 14.3", 2)
        assert hits[0].document == "q1.txt"  # BM25 puts the exact figure first; fusion keeps it there
    restricted = _with(filled, "bm25").retrieve("c", "organic revenue grew", top_k=3,
                                                document_ids=[d.id for d in filled.list_documents("c")
                                                              if d.filename == "q2.txt"])
    assert {c.document for c, _ in restricted} == {"q2.txt"}
    assert _with(filled, "bm25").retrieve("c", "the of and", top_k=3) == []  # no term: no hit, no error


def test_postings_follow_ingest_delete_and_rebuild(filled, tmp_path):
    chunks, posted, in_faiss = _chunk_sets(filled)
    assert chunks and chunks == posted == in_faiss
    filled.delete_document("c", "q1.txt")
    chunks, posted, in_faiss = _chunk_sets(filled)
    assert chunks == posted == in_faiss
    with filled.sessions() as session:
        assert session.scalar(select(lexical.Term.id).where(lexical.Term.term == "14.3")) is None
    filled.rebuild_collection("c")
    chunks, posted, in_faiss = _chunk_sets(filled)
    assert chunks == posted == in_faiss
    assert _with(filled, "bm25").retrieve("c", "1,234 people", top_k=1)[0][0].document == "staff.txt"


def test_a_failed_write_leaves_no_postings(filled, tmp_path, monkeypatch):
    """The postings are written in the chunk's transaction: a crash before the commit leaves neither."""
    from indexing.faiss_store import FaissStore

    before = _chunk_sets(filled)

    def broken(*_a, **_k):
        raise OSError("disk full")

    monkeypatch.setattr(FaissStore, "save", broken)
    (tmp_path / "new.txt").write_text("A new file about 99 lighthouses. " * 6)
    with pytest.raises(OSError):
        filled.ingest("c", [tmp_path / "new.txt"])
    monkeypatch.undo()
    assert _chunk_sets(filled)[:2] == before[:2]


def test_migration_0010_indexes_existing_chunks(catalog_at):
    from indexing.catalog import open_catalog

    url, engine = catalog_at("0009")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO documents (collection_id, content_hash, filename, source_path, size_bytes, "
                          "n_pages, status, created_at) VALUES (1, 'h', 'a.txt', '/a.txt', 3, 1, 'ready', '2024-01-01')"))
        conn.execute(text("INSERT INTO chunks (document_id, collection_id, ordinal, page_start, page_end, char_start, "
                          "char_end, text, n_tokens, embedding, summary_row) VALUES (1, 1, 0, 1, 1, 0, 30, "
                          "'Revenue grew 14.3% and revenue rose', 8, x'00', 0)"))
    engine.dispose()
    sessions = open_catalog(url)
    with sessions() as session:
        assert dict(session.execute(select(lexical.Term.term, lexical.Term.tf)).all()) == \
            {"revenue": 2, "grew": 1, "14.3": 1, "rose": 1}
        assert session.scalar(select(Chunk.n_terms)) == 5
        assert lexical.search(session, 1, "growth of 14.3", 3)[0][0] == 1  # chunk 1 first
