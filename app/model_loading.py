"""The models a set of settings names, loaded: what :class:`app.service.LlocoService` loads on first
use, and what a Ray worker loads to derive documents the same way (:mod:`app.ray_ingest`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.config import Settings
    from indexing.embedder import Embedder
    from indexing.rerank import Reranker
    from model.compressor import Compressor
    from model.loading import Decoder


def load_decoder_from(settings: Settings) -> Decoder:
    from model.device import resolve_device, resolve_dtype
    from model.loading import load_decoder
    from model.registry import resolve_decoder

    device = resolve_device(settings.device)
    folder = resolve_decoder(settings.decoder, settings.resolved_model_cache)
    return load_decoder(folder, name=settings.decoder, device=device, dtype=resolve_dtype(settings.dtype, device),
                        tokenizer_folder=settings.tokenizer)


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
