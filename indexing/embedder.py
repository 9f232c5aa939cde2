"""Retrieval embeddings of chunk text and questions (sentence-transformers, normalized)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import numpy as np


class Embedder(Protocol):
    """What the pipeline and retriever need from an embedder (a fake one serves fast tests)."""

    name: str
    dim: int

    def embed(self, texts: list[str], *, batch_size: int = 32) -> np.ndarray:
        """(n, dim) float32, L2-normalized."""
        ...


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded from a local folder."""

    def __init__(self, folder: Path, *, name: str, device: str = "cpu") -> None:
        from sentence_transformers import SentenceTransformer

        started = time.perf_counter()
        self.model = SentenceTransformer(str(folder), device=device, local_files_only=True)
        self.name = name
        dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(dim())
        self.load_seconds = time.perf_counter() - started

    def embed(self, texts: list[str], *, batch_size: int = 32) -> np.ndarray:
        import numpy as np

        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.model.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=False)
        return vectors.astype(np.float32, copy=False)
