"""Summaries of evaluation runs: per-mode means over a mode's successful rows (``n_ok``), LLoCO's
cost ratios to RAG and full context, and paired differences with bootstrap intervals
(:mod:`app.eval.stats`). A prompt-token ratio of 0.1 means LLoCO's prompts were ten times shorter.
Rendering them (tables, Markdown, plots) is :mod:`app.eval.report`'s and :mod:`app.eval.plots`'.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

from app.eval.stats import PairedDiff, mode_differences
from app.eval.store import RowData, RunData, RunInfo
from app.eval.tasks import METRICS, PRIMARY

# what the LLoCO ratios compare; context_tokens is the chunks' part of the prompt (the compression ratio)
COSTS = ("prompt_tokens", "context_tokens", "ttft_s", "total_s", "questions_per_min")


@dataclass
class ModeSummary:
    """One mode of a run: counts, metric means and cost means over its successful rows."""

    mode: str
    n_ok: int
    n_failed: int
    metrics: dict[str, float | None]
    prompt_tokens: float | None
    context_tokens: float | None  # None when no row counted it (rows written before migration 0004)
    retrieval_s: float | None
    ttft_s: float | None
    total_s: float | None
    questions_per_min: float | None  # answered questions per minute of answering time (sum of total_s)


@dataclass
class Summary:
    """A run's summary: what it covers, each mode's means and LLoCO's cost ratios."""

    run: RunInfo
    n_questions: int  # distinct questions with a row in any mode
    n_planned: int | None  # questions the dataset file gave (with --limit) on the latest run
    metric_names: list[str]
    primary: str
    modes: list[ModeSummary]
    ratios: dict[str, dict[str, float | None]] = field(default_factory=dict)
    paired: list[PairedDiff] = field(default_factory=list)  # every other mode minus rag, per metric

    def mode(self, name: str) -> ModeSummary | None:
        return next((m for m in self.modes if m.mode == name), None)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["paired"] = [d.to_dict() for d in self.paired]
        out["run"] = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in asdict(self.run).items()}
        return out


def _mean(values: list[float | int | None]) -> float | None:
    vals = [float(v) for v in values if v is not None]
    return statistics.fmean(vals) if vals else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b not in (None, 0) else None


def summarize_mode(mode: str, rows: list[RowData], metric_names: list[str]) -> ModeSummary:
    """Means of one mode's successful rows (failed rows are only counted)."""
    ok = [r for r in rows if r.mode == mode and r.status == "ok"]
    failed = sum(1 for r in rows if r.mode == mode and r.status != "ok")
    answering_s = sum(r.total_s or 0.0 for r in ok)
    return ModeSummary(
        mode=mode, n_ok=len(ok), n_failed=failed,
        metrics={name: _mean([r.score.get(name) for r in ok]) for name in metric_names},
        prompt_tokens=_mean([r.prompt_tokens for r in ok]), context_tokens=_mean([r.context_tokens for r in ok]),
        retrieval_s=_mean([r.retrieval_s for r in ok]),
        ttft_s=_mean([r.ttft_s for r in ok]), total_s=_mean([r.total_s for r in ok]),
        questions_per_min=60.0 * len(ok) / answering_s if answering_s > 0 else None)


def summarize(run: RunData) -> Summary:
    """Per-mode summaries (in the run's mode order) and the LLoCO/RAG, LLoCO/full cost ratios."""
    info = run.info
    names = METRICS.get(info.dataset) or sorted({k for r in run.rows for k in r.score})
    modes = list(dict.fromkeys([*info.modes, *(r.mode for r in run.rows)]))
    per_mode = [summarize_mode(m, run.rows, names) for m in modes]
    summary = Summary(info, len({r.qid for r in run.rows}), info.settings.get("n_questions"), names,
                      PRIMARY.get(info.dataset, names[0] if names else ""), per_mode)
    for lloco in (summary.mode("lloco"), summary.mode("lloco-pure")):
        for other in ("rag", "full"):
            base = summary.mode(other)
            if lloco and base:
                summary.ratios[f"{lloco.mode}/{other}"] = {c: _ratio(getattr(lloco, c), getattr(base, c)) for c in COSTS}
    summary.paired = mode_differences(run, names)
    return summary


def compare(summary: Summary, vs: Summary) -> dict[str, dict[str, float | None]]:
    """Per mode in both runs: this run's metric and cost means minus the other run's."""
    out: dict[str, dict[str, float | None]] = {}
    for m in summary.modes:
        other = vs.mode(m.mode)
        if other is None:
            continue
        diffs = {k: _diff(m.metrics.get(k), other.metrics.get(k)) for k in summary.metric_names}
        diffs.update({c: _diff(getattr(m, c), getattr(other, c)) for c in COSTS})
        out[m.mode] = diffs
    return out


def _diff(a: float | None, b: float | None) -> float | None:
    return a - b if a is not None and b is not None else None
