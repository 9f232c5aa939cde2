"""How a question is answered on a collection: the answerer for each mode, built from the settings
and the collection (its adapter, thresholds, the confidence model, the second look). A mixin of
:class:`app.core.service.LlocoService`, whose collections, indexes and models it uses."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.config import Mode, OnDoubt, Settings
from app.core.answerers import ANSWERERS, Answerer, FullContextAnswerer, LlocoAnswerer, ReaderRagAnswerer
from app.core.confidence import ConfidenceModel, load_models, thresholds_from_json
from model.errors import ConflictError, InvalidInputError

if TYPE_CHECKING:
    from sqlalchemy.orm import sessionmaker

    from indexing.catalog import Collection
    from indexing.embedder import Embedder
    from indexing.rerank import Reranker
    from model.loading import Decoder


@functools.lru_cache(maxsize=8)
def _models_at(path: str) -> dict[str, ConfidenceModel]:
    return load_models(Path(path))


class Answering:
    """The service's answerers (what the service provides: settings, catalog, indexes and models)."""

    settings: Settings
    sessions: sessionmaker
    decoder: Decoder
    embedder: Embedder
    reranker: Reranker | None
    # and its methods collection_row(name), index(row) and _check_models(row)

    def answerer(self, name: str, mode: Mode, *, instruction: str | None = None, second_look: bool = True) -> Answerer:
        """The answerer that :meth:`ask` uses for ``mode`` on a collection (same retrieval, contexts,
        adapter); for callers that need its steps, e.g. training data with lloco's contexts.
        ``instruction`` replaces the prompt's default one; ``second_look``: lloco modes ask again when
        unsure, as the ``on_doubt`` setting says."""
        if mode not in ANSWERERS:
            raise InvalidInputError(f"unknown mode {mode!r}: choose one of {', '.join(ANSWERERS)}")
        row = self.collection_row(name)
        self._check_models(row)
        index = self.index(row)
        if index.is_empty():  # the decoder would answer from nothing: a fluent, uncited guess
            raise ConflictError(f"collection {name!r} has no documents yet: ingest some before asking")
        s, cls = self.settings, ANSWERERS[mode]
        options: dict[str, Any] = {}
        if issubclass(cls, LlocoAnswerer):  # lloco-pure zeroes the expansion itself
            options = {"adapter": self.adapter_for(row), "expand_tokens": s.expand_tokens,
                       "expand_share": s.expand_share, "expand_scoring": s.expand_scoring,
                       "extra_chunks": s.lloco_extra_chunks}
        elif issubclass(cls, ReaderRagAnswerer):
            options = {"adapter": s.rag_adapter or self.adapter_for(row)}
        answerer = cls(sessions=self.sessions, index=index, embedder=self.embedder, decoder=self.decoder,
                       max_new_tokens=s.max_new_tokens, retrieval=s.retrieval, reranker=self.reranker,
                       prefix_cache=s.prefix_cache, no_repeat_ngram=s.no_repeat_ngram,
                       confidence=self.confidence_models().get(mode),
                       thresholds=thresholds_from_json(row.thresholds).get(mode) if s.abstain else None, **options)
        if instruction is not None:
            answerer.instruction = instruction
        if isinstance(answerer, FullContextAnswerer):
            answerer.max_context_tokens = s.max_context_tokens or self.decoder.max_context
        if second_look and s.on_doubt != "off" and isinstance(answerer, LlocoAnswerer):
            answerer.second, answerer.on_doubt = self._second_answerer(name, s.on_doubt, instruction), s.on_doubt
        return answerer

    def _second_answerer(self, name: str, kind: OnDoubt, instruction: str | None) -> Answerer:
        """Who answers a lloco question again (app.core.second_look): lloco with 4x the expansion
        budget, plain RAG on the same chunks' text, or RAG constrained to quote them."""
        if kind == "expand":
            wider = self.answerer(name, "lloco", instruction=instruction, second_look=False)
            assert isinstance(wider, LlocoAnswerer)
            wider.expand_tokens = max(4 * wider.expand_tokens, 256)
            wider.expand_share = min(1.0, 4 * wider.expand_share)
            return wider
        rag = self.answerer(name, "rag", instruction=instruction, second_look=False)
        rag.quote = kind == "quote"
        return rag

    def confidence_models(self) -> dict[str, ConfidenceModel]:
        """Per mode, the answer-confidence model fitted for this decoder (``confidence_model`` setting,
        else the shipped one; {} when there is none: the prior is used)."""
        from model.artifacts import shipped_confidence

        path = self.settings.confidence_model or shipped_confidence(self.settings.decoder)
        return _models_at(str(path))

    def adapter_for(self, row: Collection) -> str | None:
        """lloco mode reads summary vectors with the collection's adapter, else the reader adapter."""
        from model.artifacts import shipped_reader_adapter

        return row.adapter_path or self.settings.adapter or shipped_reader_adapter(self.settings.decoder)
