"""A collection as a llama-index retriever and query engine."""

from __future__ import annotations

from llama_index.core.schema import QueryBundle

from app.llamaindex import LlocoQueryEngine, LlocoRetriever


def _collection(service, pdf_factory):
    service.create_collection("c")
    service.ingest("c", [pdf_factory("g.pdf", ["Lamps and lighthouses. " * 10, "Bees and flowers. " * 10])])


def test_retriever_returns_chunks_with_pages(service, pdf_factory):
    _collection(service, pdf_factory)
    nodes = LlocoRetriever(service, "c", top_k=2).retrieve(QueryBundle("bees flowers"))
    assert len(nodes) == 2
    assert nodes[0].node.metadata["page"] == 2 and nodes[0].node.metadata["document"] == "g.pdf"
    assert "Bees" in nodes[0].node.get_content() and nodes[0].score >= nodes[1].score


def test_query_engine_answers_with_sources(service, pdf_factory):
    _collection(service, pdf_factory)
    response = LlocoQueryEngine.build(service, "c", mode="rag", top_k=1).query("bees?")
    assert response.response == service.ask("c", "bees?", mode="rag", top_k=1).read().text
    assert response.source_nodes[0].node.metadata["page"] == 2
    assert response.metadata["mode"] == "rag"
    streaming = LlocoQueryEngine.build(service, "c", mode="lloco", top_k=1, streaming=True).query("bees?")
    assert "".join(streaming.response_gen).strip() == service.ask("c", "bees?", mode="lloco", top_k=1).read().text
    assert streaming.source_nodes[0].node.metadata["document"] == "g.pdf"
