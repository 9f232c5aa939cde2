"""Summaries and reports of evaluation runs: per-mode means, LLoCO ratios, paired differences with
bootstrap intervals (:mod:`app.eval.stats`), Markdown + JSON + plots.

Means are over a mode's successful rows (``n_ok``); every summary says how many questions and
rows it covers and how many failed. Ratios divide LLoCO's mean by RAG's and by full context's,
so a prompt-token ratio of 0.1 means LLoCO's prompts were ten times shorter.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.eval.stats import CONFIDENCE, PairedDiff, mode_differences, run_differences
from app.eval.store import RowData, RunData, RunInfo
from app.eval.tasks import METRICS, PRIMARY

if TYPE_CHECKING:
    from rich.table import Table

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


# ----------------------------------------------------------------------------------- rendering

def fmt(value: float | None, digits: int = 3) -> str:
    """A number for tables: '-' when missing."""
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if abs(value) < 1000 else f"{value:,.0f}"


def table_rows(summary: Summary) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the per-mode table (shared by the terminal and the Markdown report)."""
    header = ["mode", "ok", "failed", *summary.metric_names, "prompt tokens", "context tokens", "ttft s", "total s",
              "q/min"]
    rows = [[m.mode, str(m.n_ok), str(m.n_failed), *(fmt(m.metrics[k]) for k in summary.metric_names),
             fmt(m.prompt_tokens, 1), fmt(m.context_tokens, 1), fmt(m.ttft_s), fmt(m.total_s), fmt(m.questions_per_min, 1)]
            for m in summary.modes]
    return header, rows


def ratio_rows(summary: Summary) -> tuple[list[str], list[list[str]]]:
    header = ["ratio", "prompt tokens", "context tokens", "ttft", "total", "q/min"]
    return header, [[name, *(fmt(r[c]) for c in COSTS)] for name, r in summary.ratios.items()]


def coverage(summary: Summary) -> str:
    """One line saying what the summary covers."""
    planned = f" of {summary.n_planned}" if summary.n_planned is not None else ""
    parts = ", ".join(f"{m.mode} {m.n_ok} ok/{m.n_failed} failed" for m in summary.modes)
    return (f"run {summary.run.name} (#{summary.run.id}, {summary.run.dataset}, {summary.run.status}): "
            f"{summary.n_questions}{planned} questions; {parts}; means over successful rows")


def summary_table(summary: Summary) -> Table:
    """The per-mode table, for the terminal."""
    from rich.table import Table

    header, rows = table_rows(summary)
    table = Table(*header, title=coverage(summary))
    for row in rows:
        table.add_row(*row)
    return table


def ratio_table(summary: Summary) -> Table:
    from rich.table import Table

    header, rows = ratio_rows(summary)
    table = Table(*header, title="LLoCO cost ratios (mean / mean)")
    for row in rows:
        table.add_row(*row)
    return table


def comparison_table(summary: Summary, vs: Summary) -> Table:
    from rich.table import Table

    header, rows = comparison_rows(summary, vs)
    table = Table(*header, title=f"{summary.run.name} minus {vs.run.name}")
    for row in rows:
        table.add_row(*row)
    return table


def comparison_rows(summary: Summary, vs: Summary) -> tuple[list[str], list[list[str]]]:
    diffs = compare(summary, vs)
    keys = [*summary.metric_names, *COSTS]
    return ["mode", *(f"delta {k}" for k in keys)], [[mode, *(fmt(d[k]) for k in keys)] for mode, d in diffs.items()]


def paired_rows(diffs: list[PairedDiff]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a paired-difference table (terminal and Markdown)."""
    header = ["a", "b", "metric", "n", "mean a", "mean b", "a - b", f"{CONFIDENCE:.0%} interval", "wins a/b/ties",
              "verdict"]
    return header, [[d.a, d.b, d.metric, str(d.n), fmt(d.mean_a), fmt(d.mean_b), f"{d.diff:+.3f}",
                     f"[{d.low:+.3f}, {d.high:+.3f}]", f"{d.wins}/{d.losses}/{d.ties}", d.verdict] for d in diffs]


def paired_table(diffs: list[PairedDiff], title: str) -> Table:
    from rich.table import Table

    header, rows = paired_rows(diffs)
    table = Table(*header, title=title)
    for row in rows:
        table.add_row(*row)
    return table


PAIRED_NOTE = (f"Paired by question: a - b over the questions both answered, with a percentile bootstrap "
               f"{CONFIDENCE:.0%} interval of the mean difference; 'tie' when the interval holds 0.")


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def markdown(summary: Summary, run: RunData, plots: dict[str, Path], vs: Summary | None = None,
             across: list[PairedDiff] | None = None) -> str:
    """The Markdown report: settings, coverage, per-mode table, ratios, paired differences (against
    RAG, and against the ``vs`` run: ``across``), plots, failures."""
    info = summary.run
    settings = info.settings
    out = [f"# Evaluation run {info.name} (#{info.id})", "",
           f"- dataset: **{info.dataset}**, file `{info.path}`",
           f"- decoder `{info.decoder}`, compressor `{info.compressor}`, lloco adapter `{info.adapter or 'none'}`",
           f"- top-k {settings.get('top_k')}, limit {settings.get('limit') or 'none'}, "
           f"collection `{settings.get('collection')}`, max new tokens {settings.get('max_new_tokens')}",
           f"- status {info.status}" + (f" ({info.error})" if info.error else "")
           + f", started {info.created_at:%Y-%m-%d %H:%M}", "",
           f"Coverage: {coverage(summary)}.", "", "## Results by mode", "", _md_table(*table_rows(summary)), ""]
    if summary.ratios:
        out += ["## LLoCO cost ratios", "", _md_table(*ratio_rows(summary)), ""]
    if summary.paired:
        out += ["## Paired differences against RAG", "", PAIRED_NOTE, "", _md_table(*paired_rows(summary.paired)), ""]
    if vs is not None:
        out += [f"## Compared with run {vs.run.name} (#{vs.run.id})", "", f"Other run: {coverage(vs)}.", "",
                _md_table(*comparison_rows(summary, vs)), ""]
        if across:
            out += [PAIRED_NOTE, "", _md_table(*paired_rows(across)), ""]
    out += ["## Plots", ""] + [f"![{name}]({path.name})" for name, path in plots.items()] + [""]
    failed = [r for r in run.rows if r.status != "ok"]
    if failed:
        out += [f"## Failed rows ({len(failed)})", ""]
        out += [f"- `{r.qid}` [{r.mode}]: {r.error}" for r in failed[:50]]
        out += [f"- ... and {len(failed) - 50} more"] if len(failed) > 50 else []
    return "\n".join(out).rstrip() + "\n"


def write_report(run: RunData, out_dir: str | Path, *, vs: RunData | None = None) -> dict[str, Path]:
    """Write report.md, summary.json and the PNG plots into ``out_dir``; returns them by name."""
    from app.eval.plots import write_plots

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(run)
    other = summarize(vs) if vs is not None else None
    plots = write_plots(summary, run, out, vs=other)
    across = run_differences(run, vs, summary.metric_names) if vs is not None else []
    data: dict[str, Any] = {"summary": summary.to_dict(), "rows": [asdict(r) for r in run.rows]}
    if other is not None:
        data["vs"] = {"summary": other.to_dict(), "difference": compare(summary, other),
                      "paired": [d.to_dict() for d in across]}
    files = {"markdown": out / "report.md", "json": out / "summary.json", **plots}
    files["markdown"].write_text(markdown(summary, run, plots, other, across), encoding="utf-8")
    files["json"].write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    return files
