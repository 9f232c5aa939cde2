"""Selective answering (issue 23): how well an answer's confidence tells right from wrong, and what
declining and marking answers by it does — per mode of a run.

Each row keeps its verification (``details["verification"]``: verdict, signals, confidence, level,
written by :func:`app.eval.runner.ask_one`). Correctness is answer recall where the set has it, else
its first metric (QuALITY's accuracy). Reported: AUROC of the confidence against correctness,
coverage (the share not declined) and the answer recall of what was answered, the share marked
supported and their answer recall, and the risk–coverage curve (answering the most confident first).
``models`` re-scores the stored signals with other confidence models (say, a newly fitted one) and
``thresholds`` re-applies a collection's, so one run measures several calibrations.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from app.core.confidence import ConfidenceModel, Thresholds, auroc, level
from app.core.verify import text_signals
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
        shown = "declined" if v.get("verdict") == "no-sources" else level(confidence, t, all_found=v.get("verdict") == "supported")
    return float(confidence), shown, float(row.score[metric])


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def selective(run: RunData, metric_names: list[str], *, models: Mapping[str, ConfidenceModel] | None = None,
              thresholds: Mapping[str, Thresholds] | None = None) -> list[Selective]:
    """Per mode of ``run``, its selective-answering figures (modes without verified rows are left out)."""
    metric = correctness_metric(metric_names)
    out = []
    for mode in run.info.modes:
        judged = [j for r in run.rows if r.mode == mode and (j := _judged(r, metric, models, thresholds))]
        if not judged:
            continue
        conf, shown, right = zip(*judged, strict=True)
        answered = [y for y, s in zip(right, shown, strict=True) if s != "declined"]
        supported = [y for y, s in zip(right, shown, strict=True) if s == "supported"]
        ranked = sorted(zip(conf, right, strict=True), key=lambda p: -p[0])
        curve, total = [], 0.0
        for i, (_, y) in enumerate(ranked, 1):
            total += y
            curve.append((i / len(ranked), total / i))
        out.append(Selective(mode, metric, len(judged), sum(right) / len(right), auroc(conf, [y > 0 for y in right]),
                             len(answered) / len(judged), _mean(answered), len(supported) / len(judged),
                             _mean(supported), curve))
    return out


def selective_rows(figures: list[Selective]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the selective-answering table (terminal and Markdown)."""
    def f(v: float | None) -> str:
        return "-" if v is None else f"{v:.3f}"

    header = ["mode", "rows", "right (all)", "AUROC", "answered", "right (answered)", "supported", "right (supported)"]
    return header, [[s.mode, str(s.n), f(s.accuracy), f(s.auroc), f"{s.coverage:.0%}", f(s.answered_accuracy),
                     f"{s.supported_share:.0%}", f(s.supported_accuracy)] for s in figures]
