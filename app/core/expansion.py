"""Selective expansion: the question-relevant sentences of the best chunks, as text, within a budget.

The compressor's summary vectors keep a chunk's topic but lose most of its exact numbers and names
(the fact probe of ``lloco train eval-compressor`` measures how much). lloco mode therefore also
puts, as plain text, the few sentences of the retrieved chunks that bear on the question — the
sentences citation snippets are made of — under a token budget (``Settings.expand_tokens``), beside
the chunks' summary vectors: a chunk is read from its vectors, and its key facts from a sentence or
two, at a small fraction of the text's tokens (REFRAG arXiv 2509.01092, SARA 2507.05633).

Selection: every sentence of the candidate chunks is scored with the citation rule
(:func:`app.core.citations.rarity_scores`: question words weighted by how rare they are among these
sentences); the best are taken greedily, best chunk first on ties, while their tokens fit in the
budget; a sentence repeated by two overlapping chunks is taken once. The chosen sentences are then
returned in the chunks' order, so the prompt keeps document order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.core.citations import rarity_scores, sentence_spans
from model.prompts import Context

if TYPE_CHECKING:
    import torch

Similarity = Callable[[list[str]], Sequence[float]]  # sentences -> cosine of each with the question
MIN_TRUNCATED = 8  # a best sentence longer than the whole budget is cut to it, if the budget has this many tokens


@dataclass(frozen=True)
class Sentence:
    """A selected sentence: which chunk (index into the texts given), its span there, its tokens."""

    chunk: int
    start: int
    end: int
    score: float
    token_ids: tuple[int, ...]


def select_sentences(texts: list[str], question: str, *, budget: int, encode: Callable[[str], list[int]],
                     similarity: Similarity | None = None) -> list[Sentence]:
    """The sentences of ``texts`` (chunk texts, best chunk first) that best match ``question``,
    at most ``budget`` tokens in all, ordered by (chunk, position).

    Scores are the citation rule's (:func:`app.core.citations.rarity_scores`), scaled to a best of 1;
    with ``similarity`` (sentences -> each one's cosine with the question, e.g. from the retrieval
    embedder) that cosine is added, so a sentence that names the answer but few question words can
    still win (*hybrid* scoring). A sentence scoring 0 or less is never taken; a budget of 0 takes
    nothing. Each sentence's tokens are ``encode(" " + sentence)``, and the prompt uses exactly
    those tokens, so the budget holds for what the decoder reads.
    """
    if budget < 0:
        raise ValueError(f"the expansion budget must be >= 0 tokens, got {budget}")
    if budget == 0 or not texts:
        return []
    spans = [(i, start, end) for i, text in enumerate(texts) for start, end in sentence_spans(text)]
    if not spans:
        return []
    sentences = [" ".join(texts[i][start:end].split()) for i, start, end in spans]
    scores = rarity_scores(sentences, question)
    if similarity is not None:
        top = max(scores) or 1.0
        scores = [lexical / top + float(cosine) for lexical, cosine in zip(scores, similarity(sentences), strict=True)]
    order = sorted(range(len(spans)), key=lambda j: (-scores[j], spans[j][0], spans[j][1]))
    chosen: list[Sentence] = []
    seen: set[str] = set()
    left = budget
    for j in order:
        if scores[j] <= 0 or left <= 0:
            break
        key = sentences[j].lower()
        if key in seen:
            continue
        ids = encode(" " + sentences[j])
        if len(ids) > left:
            if chosen or left < MIN_TRUNCATED:
                continue  # a later, shorter sentence may still fit
            ids = ids[:left]  # the single best sentence is longer than the whole budget: its start
        seen.add(key)
        i, start, end = spans[j]
        chosen.append(Sentence(i, start, end, scores[j], tuple(ids)))
        left -= len(ids)
    return sorted(chosen, key=lambda s: (s.chunk, s.start))


def expansion_budget(expand_tokens: int, share: float, *, text_tokens: int, vector_tokens: int) -> int:
    """Tokens of text an expansion may add: ``expand_tokens``, but never so many that the context
    (``vector_tokens`` summary vectors + the sentences) exceeds ``share`` of ``text_tokens``, what plain
    RAG would read for the same chunks."""
    return max(0, min(expand_tokens, int(share * text_tokens) - vector_tokens))


def chunk_sentences(texts: list[str], question: str, *, best: list[int], budget: int,
                    encode: Callable[[str], list[int]], similarity: Similarity | None = None) -> list[list[int]]:
    """Per chunk of ``texts`` (in their order), the token ids of its chosen sentences ([] for none).

    Sentences are chosen from the chunks at positions ``best`` (best first) within ``budget`` tokens
    (:func:`select_sentences`); the choice depends on the texts and the question only.
    """
    out: list[list[int]] = [[] for _ in texts]
    for sentence in select_sentences([texts[i] for i in best], question, budget=budget, encode=encode,
                                     similarity=similarity):
        out[best[sentence.chunk]].extend(sentence.token_ids)
    return out


def expanded_contexts(vectors: Sequence[torch.Tensor], texts: list[str], question: str, *, best: list[int],
                      budget: int, encode: Callable[[str], list[int]],
                      similarity: Similarity | None = None) -> list[Context]:
    """The prompt's contexts for chunks in prompt order: each chunk's summary vectors (kappa, d),
    followed by its chosen sentences (:func:`chunk_sentences`) as token ids when it has any.

    ``texts`` are the chunks' texts in the same order as ``vectors``. lloco mode builds its prompt
    here, and the reader's training data follows the same rule (app.training.data).
    """
    out: list[Context] = []
    sentences = chunk_sentences(texts, question, best=best, budget=budget, encode=encode, similarity=similarity)
    for v, ids in zip(vectors, sentences, strict=True):
        out.append(Context(vectors=v))
        if ids:
            out.append(Context(token_ids=ids))
    return out
