"""Retrieval in indexing/ (indexing/retrieval.py): one Retriever for every answering mode, the
service's retrieve and the llama-index adapter; restricted to chosen documents; deleted chunks
never come back."""

from __future__ import annotations

from indexing.retrieval import Retriever


def test_every_mode_and_the_service_retrieve_the_same_chunks(service, pdf_factory):
    service.create_collection("c")
    service.ingest("c", [pdf_factory("lamps.pdf", ["The keeper lit the lamps every evening."]),
                         pdf_factory("bees.pdf", ["Honeybees dance to show where the flowers are."])])
    question = "Where are the flowers, say the dancing honeybees?"
    by_service = [c.chunk_id for c, _ in service.retrieve("c", question, top_k=2)]
    for mode in ("lloco", "lloco-pure", "rag", "rag+reader"):
        answerer = service.answerer("c", mode)
        assert [h.chunk.id for h in answerer.retrieve(question, 2)] == by_service
    row = service.collection_row("c")
    retriever = Retriever(service.sessions, service.index(row), service.embedder)
    assert [h.chunk.id for h in retriever.search(question, 2)] == by_service
    assert {h.document for h in retriever.search(question, 2)} == {"lamps.pdf", "bees.pdf"}


def test_retrieval_restricted_to_documents_and_blind_to_deleted_ones(service, pdf_factory):
    service.create_collection("c")
    service.ingest("c", [pdf_factory("lamps.pdf", ["The keeper lit the lamps every evening."]),
                         pdf_factory("bees.pdf", ["Honeybees dance to show where the flowers are."])])
    docs = {d.filename: d.id for d in service.list_documents("c")}
    only = service.retrieve("c", "keeper lamps", top_k=4, document_ids=[docs["bees.pdf"]])
    assert {c.document for c, _ in only} == {"bees.pdf"}
    assert service.retrieve("c", "keeper lamps", top_k=4, document_ids=[]) == []
    service.delete_document("c", "lamps.pdf")
    assert {c.document for c, _ in service.retrieve("c", "keeper lamps", top_k=4)} == {"bees.pdf"}
