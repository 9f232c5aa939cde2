"""One calibrated confidence per answer, and the thresholds that decline or mark it (issue 23).

The verification's signals (:mod:`app.core.verify`: the claims found in the sources, whether the
answer occurs verbatim, the best retrieval score, the decoder's own token log-probabilities, whether
it ran to the token cap, whether it is the kind of answer asked for, its length, whether the chunks
hold the question's own names and words) are combined by a logistic model into a probability that
the answer is right. The model is fitted offline on answers whose correctness is known (:func:`fit_confidence`,
``bench/fit_confidence.py``) — one per answer mode, as a 135M decoder's long RAG answers and lloco's
short ones behave differently — and shipped beside the reader it was fitted with.

Two thresholds per collection and mode act on it (:class:`Thresholds`): below ``decline`` the answer
is declined ("the documents don't say", the closest passages shown instead); at or above
``supported`` (and with every claim found) it is marked supported. They are chosen offline on the
collection's own synthetic questions (:func:`choose_thresholds`, ``lloco collections calibrate``)
for the precision the ``supported_precision`` setting asks, and stored with the collection.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

Level = Literal["declined", "answered", "supported"]

# what the combiner reads: verification signals, two derived from them (log tokens, no claim)
FEATURES: tuple[str, ...] = ("supported_share", "verbatim", "top_score", "mean_logprob", "min_logprob",
                             "first_logprob", "capped", "log_tokens", "no_claim", "type_match", "log_words",
                             "question_names", "question_words")


def features(signals: Mapping[str, float]) -> list[float]:
    """The combiner's inputs, in :data:`FEATURES` order, from a verification's signals (a missing
    signal reads 0)."""
    derived = {"log_tokens": math.log1p(signals.get("tokens", 0.0)), "no_claim": float(signals.get("claims", 0.0) == 0),
               "log_words": math.log1p(signals.get("words", 0.0))}
    return [float(derived.get(name, signals.get(name, 0.0))) for name in FEATURES]


@dataclass(frozen=True)
class ConfidenceModel:
    """Logistic regression on standardised :data:`FEATURES`: P(right | signals)."""

    weights: tuple[float, ...]
    bias: float
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    n: int = 0  # answers it was fitted on
    source: str = ""  # what they were

    def __call__(self, signals: Mapping[str, float]) -> float:
        z = self.bias + sum(w * (x - m) / s for w, x, m, s in zip(self.weights, features(signals), self.mean,
                                                                    self.scale, strict=True))
        return 1.0 / (1.0 + math.exp(-max(min(z, 40.0), -40.0)))

    def contributions(self) -> dict[str, float]:
        """Each feature's weight (per standard deviation of it): what each signal adds to the log-odds."""
        return dict(zip(FEATURES, self.weights, strict=True))


def fit_confidence(signals: Sequence[Mapping[str, float]], labels: Sequence[bool], *, l2: float = 1.0,
                   source: str = "") -> ConfidenceModel:
    """A :class:`ConfidenceModel` fitted by Newton's method on L2-penalised log-loss (``l2`` on the
    weights, not the bias). Needs both right and wrong answers."""
    import numpy as np

    y = np.asarray([float(bool(v)) for v in labels])
    if len(y) != len(signals) or not 0 < y.sum() < len(y):
        raise ValueError("fitting a confidence needs as many labels as answers, some right and some wrong")
    x = np.asarray([features(s) for s in signals])  # (n, f)
    mean, scale = x.mean(0), x.std(0)
    scale[scale < 1e-9] = 1.0  # a constant feature: weight 0 by the penalty
    z = np.hstack([np.ones((len(y), 1)), (x - mean) / scale])  # (n, 1 + f)
    penalty = np.diag([0.0] + [l2] * x.shape[1])
    w = np.zeros(z.shape[1])
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ w, -40, 40)))
        gradient = z.T @ (p - y) + penalty @ w
        hessian = (z * (p * (1 - p))[:, None]).T @ z + penalty + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return ConfidenceModel(tuple(float(v) for v in w[1:]), float(w[0]), tuple(float(v) for v in mean),
                           tuple(float(v) for v in scale), n=len(y), source=source)


def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """Area under the ROC curve: the chance a right answer scores above a wrong one (ties count half);
    None without both kinds."""
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    if not pos or not neg:
        return None
    ranked = sorted([(s, 1) for s in pos] + [(s, 0) for s in neg])
    rank_sum, i = 0.0, 0
    while i < len(ranked):  # average ranks over ties
        j = i
        while j < len(ranked) and ranked[j][0] == ranked[i][0]:
            j += 1
        rank_sum += sum(label for _, label in ranked[i:j]) * (i + j + 1) / 2
        i = j
    return (rank_sum - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))


@dataclass(frozen=True)
class Thresholds:
    """A collection's thresholds for one mode (decline, supported, and for lloco the second look's),
    and what they were chosen from."""

    decline: float  # confidence below it: declined
    supported: float  # at or above it (every claim found): marked supported
    precision: float  # answer recall of the synthetic answers at or above ``supported``
    coverage: float  # share of the answers to the collection's own synthetic questions not declined
    n: int  # synthetic questions answered
    foreign_declined: float | None = None  # share of the foreign questions (text it does not hold) declined
    doubt: float | None = None  # lloco modes: below it, a second look (None: whenever not marked supported)


def choose_thresholds(confidences: Sequence[float], labels: Sequence[bool], *, supported_precision: float,
                      decline_accuracy: float, foreign: Sequence[bool] | None = None,
                      doubt_accuracy: float | None = None) -> Thresholds:
    """The thresholds for one mode from answers with known correctness.

    ``supported``: the lowest confidence above which the answers are right at least
    ``supported_precision`` of the time (1.01 — nothing marked — when no cut reaches it). ``decline``:
    the highest confidence below which the answers are right at most ``decline_accuracy`` of the time
    (0 — nothing declined on confidence — when none is that bad), never above ``supported``.
    ``foreign`` marks the answers to questions made from text the collection does not hold (labelled
    wrong): they take part in both choices and are reported apart (``foreign_declined``).
    ``doubt`` (lloco modes, given ``doubt_accuracy`` — plain RAG's answer recall on the same questions):
    the lowest confidence from which the collection's own answers are right that often; below it an
    answer is worth a second look (the ``on_doubt`` setting).
    """
    pairs = sorted(zip(confidences, (bool(v) for v in labels), strict=True))
    n = len(pairs)
    if not n:
        raise ValueError("choosing thresholds needs answers")
    elsewhere = list(foreign) if foreign is not None else [False] * n
    if len(elsewhere) != n:
        raise ValueError("foreign must mark every answer")
    supported = _lowest_cut(pairs, supported_precision)
    decline, right = 0.0, 0
    for i, (c, y) in enumerate(pairs):  # answers ..i are those below the next confidence
        right += y
        nxt = pairs[i + 1][0] if i + 1 < n else 1.0
        if nxt == c:
            continue
        if right / (i + 1) <= decline_accuracy and nxt <= supported:
            decline = (c + nxt) / 2
    top = [y for c, y in pairs if c >= supported]
    own = [(c, bool(y)) for c, y, f in zip(confidences, labels, elsewhere, strict=True) if not f]
    away = [c for c, f in zip(confidences, elsewhere, strict=True) if f]
    doubt = None if doubt_accuracy is None or not own else _lowest_cut(sorted(own), doubt_accuracy)
    return Thresholds(decline=decline, supported=supported, precision=sum(top) / len(top) if top else 0.0,
                      coverage=sum(c >= decline for c, _ in own) / len(own) if own else 0.0, n=len(own),
                      foreign_declined=sum(c < decline for c in away) / len(away) if away else None, doubt=doubt)


def _lowest_cut(pairs: Sequence[tuple[float, bool]], accuracy: float) -> float:
    """The lowest confidence of sorted (confidence, right) pairs at or above which the answers are right
    at least ``accuracy`` of the time; 1.01 (nothing) when no cut reaches it."""
    n, right_above = len(pairs), [0] * (len(pairs) + 1)  # right_above[i]: right answers among i..
    for i in range(n - 1, -1, -1):
        right_above[i] = right_above[i + 1] + pairs[i][1]
    for i in range(n):  # answers i.. are those at or above pairs[i]'s confidence
        if i and pairs[i][0] == pairs[i - 1][0]:
            continue
        if right_above[i] / (n - i) >= accuracy:
            return pairs[i][0]
    return 1.01


def level(confidence: float, thresholds: Thresholds | None, *, all_found: bool) -> Level:
    """What an answer is shown as: declined, answered (with its claims' verdicts) or supported."""
    if thresholds is None:  # not calibrated: found claims alone do not make an answer supported (Qasper:
        return "answered"   # 79 % of lloco's answers had every claim found, 4 % of those were right)
    if confidence < thresholds.decline:
        return "declined"
    return "supported" if all_found and confidence >= thresholds.supported else "answered"


def thresholds_json(by_mode: Mapping[str, Thresholds]) -> str:
    return json.dumps({mode: asdict(t) for mode, t in by_mode.items()})


def thresholds_from_json(text: str | None) -> dict[str, Thresholds]:
    return {mode: Thresholds(**t) for mode, t in json.loads(text).items()} if text else {}


def save_models(models: Mapping[str, ConfidenceModel], path: Path) -> None:
    """One model per mode, as JSON (with the feature names, which a later version must match)."""
    path.write_text(json.dumps({"features": list(FEATURES), "modes": {m: asdict(v) for m, v in models.items()}},
                               indent=1) + "\n")


def load_models(path: Path) -> dict[str, ConfidenceModel]:
    """The models :func:`save_models` wrote; {} when the file is absent or holds a feature this version
    does not compute. A file fitted before a feature was added loads with that feature weighted 0
    (it was not fitted on it), so the answers it judges are judged as they were."""
    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    saved = list(data.get("features", ()))
    if not saved or set(saved) - set(FEATURES):
        return {}

    def aligned(values: Sequence[float], missing: float) -> tuple[float, ...]:
        by_name = dict(zip(saved, values, strict=True))
        return tuple(float(by_name.get(name, missing)) for name in FEATURES)

    return {m: ConfidenceModel(**{**v, "weights": aligned(v["weights"], 0.0), "mean": aligned(v["mean"], 0.0),
                                  "scale": aligned(v["scale"], 1.0)}) for m, v in data["modes"].items()}


PRIOR = ConfidenceModel(weights=(1.5, 0.5, 0.5, 1.0, 0.5, 0.0, -0.5, 0.0, -1.0, 0.3, -0.3, 1.0, 0.5), bias=-1.0,
                        mean=(0.6, 0.3, 0.5, -1.0, -3.0, -1.0, 0.2, 2.0, 0.1, 0.5, 2.0, 0.8, 0.8),
                        scale=(0.4, 0.45, 0.15, 0.7, 2.0, 1.0, 0.4, 1.0, 0.3, 0.4, 1.0, 0.3, 0.3), source="prior")
"""A decoder without a fitted model (a 7B checkpoint from a folder): claims found in the sources and
the decoder's mean log p and an answer of the kind asked raise it; running to the cap, length and an
empty answer lower it, and so does a question whose names and words the chunks read do not hold. Its scale is a
guess; :func:`choose_thresholds` on the collection's synthetic questions is what makes it usable."""
