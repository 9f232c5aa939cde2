"""Reports of evaluation runs (:mod:`app.eval.summary`): terminal tables, Markdown + JSON + plots.

Means are over a mode's successful rows (``n_ok``); every summary says how many questions and
rows it covers and how many failed. Ratios divide LLoCO's mean by RAG's and by full context's,
so a prompt-token ratio of 0.1 means LLoCO's prompts were ten times shorter.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.eval.selective import abstention_rows, selective, selective_rows
from app.eval.stats import CONFIDENCE, PairedDiff, run_differences
from app.eval.store import RunData
from app.eval.summary import COSTS, Summary, compare, summarize

if TYPE_CHECKING:
    from rich.table import Table

SELECTIVE_NOTE = ("Each answer's confidence (app.core.confidence) against its correctness ({metric}): AUROC, the "
                  "share answered (not declined by the collection's threshold) and their {metric}, the share "
                  "marked supported and theirs; the risk-coverage plot answers the most confident first.")

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
    figures = selective(run, summary.metric_names)
    if figures:
        out += ["## Selective answering", "", SELECTIVE_NOTE.format(metric=figures[0].metric), "",
                _md_table(*selective_rows(figures)), ""]
        if (table := abstention_rows(figures)) is not None:
            out += ["Questions the documents don't answer (no reference) against those they do: the share of each "
                    "declined, and how well the confidence tells them apart.", "", _md_table(*table), ""]
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
    data: dict[str, Any] = {"summary": summary.to_dict(), "rows": [asdict(r) for r in run.rows],
                            "selective": [asdict(f) for f in selective(run, summary.metric_names)]}
    if other is not None:
        data["vs"] = {"summary": other.to_dict(), "difference": compare(summary, other),
                      "paired": [d.to_dict() for d in across]}
    files = {"markdown": out / "report.md", "json": out / "summary.json", **plots}
    files["markdown"].write_text(markdown(summary, run, plots, other, across), encoding="utf-8")
    files["json"].write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    return files
