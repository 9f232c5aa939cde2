"""The models a set of settings names, loaded: what :class:`app.core.service.LlocoService` loads on first
use, and what a Ray worker loads to derive documents the same way (:mod:`app.core.ray_ingest`)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.config import Settings
    from indexing.embedder import Embedder
    from indexing.pipeline import Deriver
    from indexing.rerank import Reranker
    from model.compressor import Compressor
    from model.loading import Decoder


def make_deriver(settings: Settings, *, embedder: Embedder, compressor: Compressor, encode: Callable[[str], list[int]],
                 chunk_tokens: int, chunk_overlap: int) -> Deriver:
    """How a file becomes a collection's chunks and vectors with these models: the collection's
    chunking, the settings' limits and batch sizes. One recipe for this process and a Ray worker."""
    from indexing.pipeline import Deriver

    return Deriver(embedder=embedder, compressor=compressor, encode=encode, chunk_tokens=chunk_tokens,
                   chunk_overlap=chunk_overlap, max_bytes=settings.max_file_bytes, pdf_tables=settings.pdf_tables,
                   embed_batch_size=settings.embed_batch_size, compress_batch_size=settings.compress_batch_size)


def load_decoder_from(settings: Settings) -> Decoder:
    from model.device import resolve_device, resolve_dtype
    from model.loading import load_decoder
    from model.registry import resolve_decoder

    device = resolve_device(settings.device)
    folder = resolve_decoder(settings.decoder, settings.resolved_model_cache)
    decoder = load_decoder(folder, name=settings.decoder, device=device, dtype=resolve_dtype(settings.dtype, device),
                           tokenizer_folder=settings.tokenizer, merge_adapters=settings.merge_reader)
    if settings.answer_engine == "llama-cpp":
        from model.llamacpp import LlamaCppEngine

        decoder.engine = LlamaCppEngine(cache_dir=settings.resolved_model_cache / "gguf", gguf_type=settings.gguf_type)
    return decoder


def load_embedder_from(settings: Settings) -> Embedder:
    from indexing.embedder import SentenceTransformerEmbedder
    from model.device import resolve_device
    from model.registry import resolve_embedder

    return SentenceTransformerEmbedder(resolve_embedder(settings.embedder), name=settings.embedder,
                                       device=resolve_device(settings.device))


def load_reranker_from(settings: Settings) -> Reranker | None:
    """The cross-encoder the ``reranker`` setting names (None: no reranking)."""
    from indexing.rerank import CrossEncoderReranker
    from model.device import resolve_device

    if settings.reranker is None:
        return None
    return CrossEncoderReranker(settings.reranker, pool=settings.rerank_pool, device=resolve_device(settings.device))


def compressor_source(settings: Settings) -> str | None:
    """The compressor checkpoint the settings name (None: untrained)."""
    from model.artifacts import shipped_compressor

    return shipped_compressor(settings.decoder) if settings.compressor == "default" else settings.compressor


def load_compressor_from(settings: Settings, decoder: Decoder) -> Compressor:
    from model.compressor import load_compressor

    return load_compressor(compressor_source(settings), decoder, kappa=settings.summary_tokens)


class LoadedModels:
    """The models a settings object names, each loaded on first use and kept: the service's models
    (``decoder``, ``embedder``, ``compressor``, ``reranker`` given here are used as they are: tests
    inject tiny or fake ones). ``_lock`` (reentrant) guards the loading, and the subclass's own caches."""

    def __init__(self, settings: Settings, *, decoder: Decoder | None = None, embedder: Embedder | None = None,
                 compressor: Compressor | None = None, reranker: Reranker | None = None) -> None:
        self.settings = settings
        self._decoder, self._embedder, self._compressor = decoder, embedder, compressor
        self._reranker, self._reranker_loaded = reranker, reranker is not None  # None is a loaded "no reranker"
        self._lock = threading.RLock()

    @property
    def decoder(self) -> Decoder:
        with self._lock:
            if self._decoder is None:
                self._decoder = load_decoder_from(self.settings)
            return self._decoder

    @property
    def embedder(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                self._embedder = load_embedder_from(self.settings)
            return self._embedder

    @property
    def reranker(self) -> Reranker | None:
        """The cross-encoder the ``reranker`` setting names, loaded on first use (None: no reranking)."""
        with self._lock:
            if not self._reranker_loaded:
                self._reranker, self._reranker_loaded = load_reranker_from(self.settings), True
            return self._reranker

    @property
    def compressor(self) -> Compressor:
        with self._lock:
            if self._compressor is None:
                self._compressor = load_compressor_from(self.settings, self.decoder)
            return self._compressor

    @property
    def compressor_ident(self) -> str:
        """The compressor's identity (what collections record), without loading it if it is not loaded."""
        if self._compressor is not None:
            return self._compressor.ident
        from model.compressor import compressor_ident

        return compressor_ident(compressor_source(self.settings), kappa=self.settings.summary_tokens)
