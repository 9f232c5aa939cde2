"""Reranking (issue 13): a cross-encoder reads the question beside each of the first-stage
retrieval's best ``pool`` chunks and orders them by its relevance score; the top-k of that order is
what every answering mode reads.

No cross-encoder can be installed offline on this project's machines (the model set of
../shared/MODELS.md has none; the decoder as a yes/no judge was measured and not kept, docs/RESULTS.md
§7), so the ``reranker`` setting is empty by default: it takes a sentence-transformers CrossEncoder
folder (e.g. a downloaded ``cross-encoder/ms-marco-MiniLM-L-6-v2``) or, with network, a hub name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from model.errors import ModelNotAvailableError

MAX_LENGTH = 512  # question + chunk tokens the cross-encoder reads (a 256-token chunk fits)


class Reranker(Protocol):
    """Scores (question, text) pairs; ``pool``: how many first-stage hits it reorders."""

    pool: int

    def scores(self, question: str, texts: list[str]) -> list[float]:
        """One relevance score per text (higher: more relevant), in the order given."""
        ...


class CrossEncoderReranker:
    """A sentence-transformers CrossEncoder as :class:`Reranker`."""

    def __init__(self, source: str, *, pool: int = 20, device: str = "cpu") -> None:
        from sentence_transformers import CrossEncoder

        path = Path(source).expanduser()
        if path.exists() and not (path / "config.json").is_file():
            raise ModelNotAvailableError(f"reranker {source!r}: {path} has no config.json, not a cross-encoder folder")
        try:
            self._model = CrossEncoder(str(path) if path.exists() else source, device=device, max_length=MAX_LENGTH)
        except (OSError, ValueError) as err:  # no such hub model, no network, unreadable weights
            raise ModelNotAvailableError(f"reranker {source!r} could not be loaded ({err}); give a local "
                                         "sentence-transformers CrossEncoder folder, or unset the reranker setting") from err
        self.pool = pool

    def scores(self, question: str, texts: list[str]) -> list[float]:
        if not texts:
            return []
        values = self._model.predict([(question, text) for text in texts], show_progress_bar=False)  # (n,) or (n, 1)
        return [float(v) for v in values.reshape(len(texts), -1)[:, 0]]


def reranked(question: str, texts: list[str], reranker: Reranker) -> list[int]:
    """Indices of ``texts`` best first by the reranker's scores (ties keep the first stage's order)."""
    scores = reranker.scores(question, texts)
    return sorted(range(len(texts)), key=lambda i: -scores[i])
