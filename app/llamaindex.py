"""A lloco collection as a llama-index retriever and query engine, for llama-index applications.

    from app.llamaindex import LlocoRetriever, LlocoQueryEngine
    retriever = LlocoRetriever(service, "demo", top_k=4)
    engine = LlocoQueryEngine.build(service, "demo", mode="lloco")
    print(engine.query("Who designed the Eddystone lighthouse?"))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llama_index.core.base.response.schema import Response, StreamingResponse
from llama_index.core.query_engine import CustomQueryEngine
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from app.core.citations import Citation

if TYPE_CHECKING:
    from app.config import Mode
    from app.core.service import LlocoService


def citation_node(citation: Citation, text: str | None = None) -> NodeWithScore:
    """A llama-index node for a cited chunk: its id is the chunk id, metadata the citation."""
    node = TextNode(id_=str(citation.chunk_id), text=text if text is not None else citation.snippet,
                    metadata={"document": citation.document, "document_id": citation.document_id,
                              "page": citation.page, "page_end": citation.page_end})
    return NodeWithScore(node=node, score=citation.score)


class LlocoRetriever(BaseRetriever):
    """Dense retrieval over a lloco collection (the same retriever every answering mode uses)."""

    def __init__(self, service: LlocoService, collection: str, *, top_k: int | None = None) -> None:
        super().__init__()
        self._service, self._collection = service, collection
        self._top_k = top_k or service.settings.top_k

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = self._service.retrieve(self._collection, query_bundle.query_str, top_k=self._top_k)
        return [citation_node(c, text) for c, text in hits]


class LlocoQueryEngine(CustomQueryEngine):
    """Answers with a lloco mode; ``source_nodes`` are the cited chunks."""

    service: Any
    collection: str
    mode: str = "lloco"
    top_k: int | None = None
    streaming: bool = False

    @classmethod
    def build(cls, service: LlocoService, collection: str, *, mode: Mode = "lloco", top_k: int | None = None,
              streaming: bool = False) -> LlocoQueryEngine:
        return cls(service=service, collection=collection, mode=mode, top_k=top_k, streaming=streaming)

    def custom_query(self, query_str: str) -> Response | StreamingResponse:
        stream = self.service.ask(self.collection, query_str, mode=self.mode, top_k=self.top_k)
        if self.streaming:
            # source nodes are known before generation starts: retrieval already ran
            return StreamingResponse(response_gen=iter(stream), source_nodes=_nodes(stream.answer.citations))
        answer = stream.read()
        return Response(response=answer.text, source_nodes=_nodes(answer.citations),
                        metadata={"mode": answer.mode, "prompt_tokens": answer.prompt_tokens, "total_s": answer.total_s})


def _nodes(citations: list[Citation]) -> list[NodeWithScore]:
    return [citation_node(c) for c in citations]
