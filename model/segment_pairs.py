"""Segment pairs for the compressor: (A, next segment B) drawn from a tokenized corpus, and the
input layouts that score them (shared by training and evaluation).

A pair is a function of (seed, index) only, so a resumed run sees the same data in the same order.
Inputs are built as rows of pieces, each piece an embedding matrix with optional labels, then
right-padded into one batch: every layout (summary + B, summary + prompt + A, A + B, B alone)
goes through :func:`assemble` and :func:`token_scores`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from model.corpus import CorpusError, Document, SourceStats, is_heldout

if TYPE_CHECKING:
    import torch

RECON_PROMPT = " Repeat:"  # between the summary vectors and A in the reconstruction objective
IGNORE = -100
Piece = tuple["torch.Tensor", list[int] | None]  # (embeds (n, d), labels of length n or None = unscored)


class CorpusTooSmallError(CorpusError):
    """Not enough text for the requested segment lengths."""


@dataclass(frozen=True)
class TokenDoc:
    source: str
    doc_id: str
    ids: np.ndarray  # (n_tokens,) int32
    heldout: bool


@dataclass(frozen=True)
class Pair:
    source: str
    a: list[int]  # the segment to compress: min..max segment tokens
    b: list[int]  # the segment that follows it: next_segment tokens


def tokenize_corpus(documents: Iterable[Document], tokenizer, *, heldout_every: int, batch: int = 32) -> list[TokenDoc]:
    """Token ids of every document (no special tokens), in order, flagged held out or not."""
    docs = list(documents)
    out: list[TokenDoc] = []
    for start in range(0, len(docs), batch):
        part = docs[start:start + batch]
        ids = tokenizer([d.text for d in part], add_special_tokens=False)["input_ids"]
        out += [TokenDoc(d.source, d.doc_id, np.asarray(i, dtype=np.int32), is_heldout(d.doc_id, heldout_every))
                for d, i in zip(part, ids, strict=True)]
    return out


def token_stats(docs: list[TokenDoc], sources: Iterable[str]) -> list[SourceStats]:
    """Documents and tokens per source, with the held-out share."""
    rows = []
    for name in sources:
        mine = [d for d in docs if d.source == name]
        held = [d for d in mine if d.heldout]
        rows.append(SourceStats(name, len(mine), len(held), sum(len(d.ids) for d in mine), sum(len(d.ids) for d in held)))
    return rows


class PairSampler:
    """Pairs drawn uniformly over token positions of the documents long enough for one pair."""

    def __init__(self, docs: list[TokenDoc], *, min_segment: int, max_segment: int, next_segment: int, seed: int,
                 min_tokens: int = 0, what: str = "training") -> None:
        if not 1 <= min_segment <= max_segment or next_segment < 2:
            raise CorpusError(f"bad segment lengths: need 1 <= min ({min_segment}) <= max ({max_segment}), next >= 2")
        self.min, self.max, self.next, self.seed = min_segment, max_segment, next_segment, seed
        self.docs = [d for d in docs if len(d.ids) >= min_segment + next_segment]
        usable = sum(len(d.ids) for d in self.docs)
        if not self.docs or usable < min_tokens:
            total = sum(len(d.ids) for d in docs)
            raise CorpusTooSmallError(
                f"{what} corpus too small: {len(docs)} documents, {total} tokens, {len(self.docs)} documents of at "
                f"least {min_segment + next_segment} tokens ({usable} tokens); need at least {max(min_tokens, 1)} "
                f"tokens in such documents (add sources or shorten the segments)")
        weights = np.array([len(d.ids) - min_segment - next_segment + 1 for d in self.docs], dtype=np.float64)
        self._cum = np.cumsum(weights) / weights.sum()

    @property
    def tokens(self) -> int:
        return int(sum(len(d.ids) for d in self.docs))

    def pair(self, index: int) -> Pair:
        rng = np.random.default_rng([self.seed, index])
        doc = self.docs[min(int(np.searchsorted(self._cum, rng.random(), side="right")), len(self.docs) - 1)]
        n_a = min(int(rng.integers(self.min, self.max + 1)), len(doc.ids) - self.next)
        start = int(rng.integers(0, len(doc.ids) - n_a - self.next + 1))
        ids = doc.ids[start:start + n_a + self.next].tolist()
        return Pair(doc.source, ids[:n_a], ids[n_a:])

    def pairs(self, start: int, count: int) -> list[Pair]:
        return [self.pair(i) for i in range(start, start + count)]


# ------------------------------------------------------------------------------ layouts

def summary_then_next(summary: torch.Tensor, b: list[int], embed: Callable) -> list[Piece]:
    """[S ; B], scored on B: the next-segment LM objective. ``summary``: (kappa, d)."""
    return [(summary, None), (embed(b), b)]


def summary_then_repeat(summary: torch.Tensor, prompt: list[int], a: list[int], embed: Callable) -> list[Piece]:
    """[S ; prompt ; A], scored on A: the reconstruction (autoencoding) objective."""
    return [(summary, None), (embed(prompt), None), (embed(a), a)]


def text_then_next(a: list[int], b: list[int], embed: Callable) -> list[Piece]:
    """[A ; B], scored on B; with ``a == []``, B alone (no context). Also [prompt ; A] for the recon baseline."""
    return ([(embed(a), None)] if a else []) + [(embed(b), b)]


def assemble(rows: list[list[Piece]], dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-pad rows of pieces into (embeds (B, L, d), attention mask (B, L), labels (B, L))."""
    import torch

    lengths = [sum(int(e.shape[0]) for e, _ in row) for row in rows]
    longest, ref = max(lengths), rows[0][0][0]
    embeds, labels = [], []
    for row, n in zip(rows, lengths, strict=True):
        parts = [e.to(dtype) for e, _ in row] + [ref.new_zeros(longest - n, ref.shape[-1], dtype=dtype)]
        embeds.append(torch.cat(parts))  # (L, d)
        labels.append([t for e, lab in row for t in (lab if lab is not None else [IGNORE] * int(e.shape[0]))]
                      + [IGNORE] * (longest - n))
    mask = torch.tensor([[1] * n + [0] * (longest - n) for n in lengths], device=ref.device)
    return torch.stack(embeds), mask, torch.tensor(labels, dtype=torch.long, device=ref.device)


def token_scores(logits: torch.Tensor, labels: torch.Tensor, *, skip_first: bool = False) -> tuple[torch.Tensor, int, int]:
    """(summed NLL (differentiable), scored tokens, argmax-correct tokens) of next-token prediction.

    ``logits``: (B, L, V); ``labels``: (B, L) with -100 on unscored positions. Position t predicts
    label t+1. ``skip_first`` drops the first labelled token of every row (see eval_compressor).
    """
    import torch.nn.functional as F

    if skip_first:
        labels = labels.clone()
        first = (labels != IGNORE).int().argmax(dim=1)  # (B,) first labelled position per row
        labels[range(labels.shape[0]), first] = IGNORE
    target = labels[:, 1:]  # (B, L-1)
    pred = logits[:, :-1].float()  # (B, L-1, V)
    nll = F.cross_entropy(pred.reshape(-1, pred.shape[-1]), target.reshape(-1), ignore_index=IGNORE, reduction="sum")
    scored = target != IGNORE
    correct = int((pred.argmax(-1) == target)[scored].sum())
    return nll, int(scored.sum()), correct


def weighted_nll(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Mean next-token NLL with a weight per labelled position: sum(w * nll) / sum(w).

    ``logits``: (B, L, V); ``labels``, ``weights``: (B, L), a label's weight at its own position
    (unscored positions carry label -100 and are ignored whatever their weight).
    """
    import torch.nn.functional as F

    target, w = labels[:, 1:], weights[:, 1:].float()  # (B, L-1)
    pred = logits[:, :-1].float()  # (B, L-1, V)
    nll = F.cross_entropy(pred.transpose(1, 2), target, ignore_index=IGNORE, reduction="none")  # (B, L-1)
    w = w * (target != IGNORE)
    return (nll * w).sum() / w.sum().clamp_min(1e-8)
