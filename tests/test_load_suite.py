"""The load suite's fast variant (issue 12): 8 concurrent questions (mixed modes, two collections)
while an ingest and a delete run on one of them, through the service and through the API server:
no errors, the sequential greedy answers, and no half-deleted document seen by retrieval. The full
suite on the default models: `.venv/bin/python -m bench.load_suite --rounds 3`."""

from __future__ import annotations

import threading

import pytest

from bench.load_suite import run


@pytest.fixture
def service(any_backend_service):
    """On SQLite and on PostgreSQL (where a server is set)."""
    return any_backend_service


def test_concurrent_questions_during_an_ingest_and_a_delete(service, tmp_path):
    results = run(service, tmp_path / "files", rounds=1, via=("service", "http"), say=lambda _line: None)
    assert [r.via for r in results] == ["service", "http"]
    for r in results:
        assert r.errors == [] and r.mismatched == [] and r.questions == 8
        assert r.probes > 0 and r.half_deleted == 0


def test_a_delete_waits_for_a_question_that_is_reading(service, tmp_path, monkeypatch):
    """Deterministic: a delete started while a question's retrieval is between its FAISS search and
    its summary-vector read is held until the question has read everything it needs."""
    from indexing.collection_index import CollectionIndex
    from indexing.retrieval import Retriever

    service.create_collection("c")
    (tmp_path / "v.txt").write_text("The fog cannon was fired every ten minutes in thick weather. " * 12)
    service.ingest("c", [tmp_path / "v.txt"])
    index = service.answerer("c", "rag").index
    original, held = CollectionIndex.search, []

    def search_then_delete(self, query, k, *, ids=None):
        found = original(self, query, k, ids=ids)
        deleting = threading.Thread(target=service.delete_document, args=("c", "v.txt"))
        deleting.start()
        deleting.join(timeout=1.0)
        held.append((deleting, deleting.is_alive()))  # still waiting for the question's view to end
        return found

    monkeypatch.setattr(CollectionIndex, "search", search_then_delete)
    hits = Retriever(service.sessions, index, service.embedder).search("fog cannon", 2, with_summaries=True)
    monkeypatch.undo()
    deleting, waited = held[0]
    deleting.join(30)
    assert waited and hits and all(h.summary.any() for h in hits)  # read whole, not as erased rows
    assert service.list_documents("c") == []  # and the delete went through after
