"""Paired comparisons: is one mode better than another on the same questions, beyond the noise?

Two modes (or two runs) are compared question by question: for every question both answered, the
difference of their scores. The mean difference gets a percentile bootstrap 95 % interval
(questions resampled with replacement), and the questions are counted that each side wins. An
interval that holds 0 is a tie: the sets are small (40-200 questions), so a difference of a few
points is often noise, and a report must say so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from app.eval.store import RowData, RunData

RESAMPLES = 10_000
CONFIDENCE = 0.95
Verdict = Literal["better", "worse", "tie"]


@dataclass(frozen=True)
class PairedDiff:
    """``a`` minus ``b`` on one metric, over the ``n`` questions both answered."""

    metric: str
    a: str  # what is compared, e.g. "lloco" (or "lloco @ run-1" across runs)
    b: str  # what it is compared with, e.g. "rag"
    n: int
    mean_a: float
    mean_b: float
    diff: float  # mean of the per-question differences a - b
    low: float  # bootstrap interval of ``diff``
    high: float
    wins: int  # questions where a scored higher
    losses: int  # questions where b scored higher
    ties: int

    @property
    def verdict(self) -> Verdict:
        """'better' or 'worse' when the interval excludes 0, else 'tie'."""
        return "better" if self.low > 0 else "worse" if self.high < 0 else "tie"

    def to_dict(self) -> dict[str, object]:
        return {**self.__dict__, "verdict": self.verdict}


def bootstrap_interval(diffs: list[float], *, confidence: float = CONFIDENCE, resamples: int = RESAMPLES,
                       seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``diffs`` (seeded: the same data, the same interval)."""
    import numpy as np

    if not diffs:
        raise ValueError("no differences to resample")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    values = np.asarray(diffs, dtype=np.float64)  # (n,)
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    step = max(1, 2_000_000 // len(values))  # resample in blocks of ~2M draws to bound memory
    for start in range(0, resamples, step):
        count = min(step, resamples - start)
        means[start:start + count] = values[rng.integers(0, len(values), size=(count, len(values)))].mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def paired_diff(metric: str, a: dict[str, float], b: dict[str, float], *, a_label: str, b_label: str,
                seed: int = 0) -> PairedDiff | None:
    """``a`` minus ``b`` over the question ids both score (None when they share none)."""
    qids = sorted(set(a) & set(b))
    if not qids:
        return None
    diffs = [a[q] - b[q] for q in qids]
    low, high = bootstrap_interval(diffs, seed=seed)
    n = len(qids)
    return PairedDiff(metric, a_label, b_label, n, sum(a[q] for q in qids) / n, sum(b[q] for q in qids) / n,
                      sum(diffs) / n, low, high, sum(d > 0 for d in diffs), sum(d < 0 for d in diffs),
                      sum(d == 0 for d in diffs))


def scores_by_question(rows: list[RowData], mode: str, metric: str) -> dict[str, float]:
    """qid -> score of ``mode``'s successful rows that have ``metric``."""
    return {r.qid: float(r.score[metric]) for r in rows
            if r.mode == mode and r.status == "ok" and r.score.get(metric) is not None}


def mode_differences(run: RunData, metrics: list[str], *, baseline: str = "rag") -> list[PairedDiff]:
    """Every other mode of a run minus ``baseline`` (when the run has it), per metric."""
    modes = list(dict.fromkeys([*run.info.modes, *(r.mode for r in run.rows)]))
    if baseline not in modes:
        return []
    out = []
    for mode in (m for m in modes if m != baseline):
        for metric in metrics:
            found = paired_diff(metric, scores_by_question(run.rows, mode, metric),
                                scores_by_question(run.rows, baseline, metric), a_label=mode, b_label=baseline)
            if found is not None:
                out.append(found)
    return out


def run_differences(run: RunData, other: RunData, metrics: list[str]) -> list[PairedDiff]:
    """``run`` minus ``other``, paired by question: each mode both runs have; or, when each run has
    a single mode and they differ (say lloco in one, rag in the other), those two."""
    mine = list(dict.fromkeys(r.mode for r in run.rows))
    theirs = list(dict.fromkeys(r.mode for r in other.rows))
    pairs = [(m, m) for m in mine if m in theirs]
    if not pairs and len(mine) == 1 and len(theirs) == 1:
        pairs = [(mine[0], theirs[0])]
    out = []
    for mode_a, mode_b in pairs:
        for metric in metrics:
            found = paired_diff(metric, scores_by_question(run.rows, mode_a, metric),
                                scores_by_question(other.rows, mode_b, metric),
                                a_label=f"{mode_a} @ {run.info.name}", b_label=f"{mode_b} @ {other.info.name}")
            if found is not None:
                out.append(found)
    return out
