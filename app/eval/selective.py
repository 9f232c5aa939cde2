"""Selective answering (issue 23): how well an answer's confidence tells right from wrong, and what
declining and marking answers by it does — per mode of a run.

Each row keeps its verification (``details["verification"]``: verdict, signals, confidence, level,
written by :func:`app.eval.runner.ask_one`). Correctness is answer recall where the set has it, else
its first metric (QuALITY's accuracy). Reported: AUROC of the confidence against correctness,
coverage (the share not declined) and the answer recall of what was answered, the share marked
supported and their answer recall, and the risk–coverage curve (answering the most confident first).
``models`` re-scores the stored signals with other confidence models (say, a newly fitted one) and
``thresholds`` re-applies a collection's, so one run measures several calibrations. Where a set
holds questions without an answer (SQuAD 2.0's, stored with no reference), :class:`Abstention`
says how often each kind was declined and how well the confidence tells them apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from app.core.confidence import ConfidenceModel, Thresholds, auroc
from app.core.verify import shown_level, text_signals
from app.eval.store import RowData, RunData


@dataclass(frozen=True)
class Selective:
    """One mode's selective-answering figures."""

    mode: str
    metric: str  # what "right" means
    n: int  # rows with a verification
    accuracy: float  # mean correctness of all of them (the mode's answer recall)
    auroc: float | None
    coverage: float  # share not declined
    answered_accuracy: float | None  # of those not declined
    supported_share: float
    supported_accuracy: float | None
    curve: list[tuple[float, float]] = field(default_factory=list)  # (coverage, accuracy of the answered)
    abstention: Abstention | None = None  # where the set has unanswerable questions


@dataclass(frozen=True)
class Abstention:
    """Questions the documents answer against those they don't (no reference): each kind's share
    declined, and the AUROC of the confidence for "answerable" (SQuAD 2.0's target: >= 0.65)."""

    answerable: int
    unanswerable: int
    declined_answerable: float
    declined_unanswerable: float
    auroc: float | None


def _abstention(conf: tuple[float, ...], shown: tuple[str, ...], answerable: list[bool]) -> Abstention | None:
    kinds = [[s for s, a in zip(shown, answerable, strict=True) if a == kind] for kind in (True, False)]
    if not all(kinds):
        return None
    declined = [sum(s == "declined" for s in k) / len(k) for k in kinds]
    return Abstention(len(kinds[0]), len(kinds[1]), declined[0], declined[1], auroc(conf, answerable))


def correctness_metric(metric_names: list[str]) -> str:
    return "recall" if "recall" in metric_names else metric_names[0]


def row_signals(row: RowData) -> dict[str, float]:
    """A row's stored verification signals, with those read from its question and answer alone
    (:func:`app.core.verify.text_signals`) filled in for rows stored before they existed."""
    stored = (row.details.get("verification") or {}).get("signals") or {}
    return {**text_signals(row.prediction or "", row.question), **stored}


def _judged(row: RowData, metric: str, models: Mapping[str, ConfidenceModel] | None,
            thresholds: Mapping[str, Thresholds] | None) -> tuple[float, str, float] | None:
    v = row.details.get("verification")
    if row.status != "ok" or not v or metric not in row.score:
        return None
    model = (models or {}).get(row.mode)
    confidence = model(row_signals(row)) if model is not None else v.get("confidence")
    if confidence is None:
        return None
    shown = v.get("level") or "answered"
    if thresholds is not None or model is not None:
        t = (thresholds or {}).get(row.mode)
        shown = shown_level(v.get("verdict", ""), confidence, t)
    return float(confidence), shown, float(row.score[metric])


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def selective(run: RunData, metric_names: list[str], *, models: Mapping[str, ConfidenceModel] | None = None,
              thresholds: Mapping[str, Thresholds] | None = None) -> list[Selective]:
    """Per mode of ``run``, its selective-answering figures (modes without verified rows are left out)."""
    metric = correctness_metric(metric_names)
    out = []
    for mode in run.info.modes:
        pairs = [(r, j) for r in run.rows if r.mode == mode and (j := _judged(r, metric, models, thresholds))]
        if not pairs:
            continue
        conf, shown, right = zip(*(j for _, j in pairs), strict=True)
        answered = [y for y, s in zip(right, shown, strict=True) if s != "declined"]
        supported = [y for y, s in zip(right, shown, strict=True) if s == "supported"]
        ranked = sorted(zip(conf, right, strict=True), key=lambda p: -p[0])
        curve, total = [], 0.0
        for i, (_, y) in enumerate(ranked, 1):
            total += y
            curve.append((i / len(ranked), total / i))
        n = len(pairs)
        out.append(Selective(mode, metric, n, sum(right) / n, auroc(conf, [y > 0 for y in right]),
                             len(answered) / n, _mean(answered), len(supported) / n, _mean(supported), curve,
                             _abstention(conf, shown, [bool(r.references) for r, _ in pairs])))
    return out


def selective_rows(figures: list[Selective]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the selective-answering table (terminal and Markdown)."""
    def f(v: float | None) -> str:
        return "-" if v is None else f"{v:.3f}"

    header = ["mode", "rows", "right (all)", "AUROC", "answered", "right (answered)", "supported", "right (supported)"]
    return header, [[s.mode, str(s.n), f(s.accuracy), f(s.auroc), f"{s.coverage:.0%}", f(s.answered_accuracy),
                     f"{s.supported_share:.0%}", f(s.supported_accuracy)] for s in figures]


def abstention_rows(figures: list[Selective]) -> tuple[list[str], list[list[str]]] | None:
    """Header and rows of the answerable / unanswerable table, or None when no mode has both kinds."""
    rows = [[s.mode, str(a.answerable), str(a.unanswerable), f"{a.declined_answerable:.0%}",
             f"{a.declined_unanswerable:.0%}", "-" if a.auroc is None else f"{a.auroc:.3f}"]
            for s in figures if (a := s.abstention) is not None]
    header = ["mode", "answerable", "unanswerable", "declined (answerable)", "declined (unanswerable)",
              "AUROC (answerable)"]
    return (header, rows) if rows else None
