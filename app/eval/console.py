"""Terminal rendering of evaluations for the CLI: a progress bar with ETA, summary tables."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from app.config import MODES
from app.eval.report import comparison_table, fmt, paired_table, ratio_table, summary_table
from app.eval.summary import summarize

if TYPE_CHECKING:
    from app.eval.runner import EvalProgress, EvalSpec
    from app.eval.store import RunData
    from app.core.service import LlocoService


def run_with_progress(service: LlocoService, spec: EvalSpec, console: Console, *, resume: int | str | None = None) -> int:
    """Run an evaluation with one bar for ingestion and one for the answers (with ETA)."""
    from app.eval.runner import run_eval

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bars:
        tasks = {"ingest": bars.add_task("documents", total=None), "ask": bars.add_task("answers", total=None)}

        def on_progress(event: EvalProgress) -> None:
            if event.stage == "load":
                console.print(f"{event.item} ...")
                return
            label = "documents" if event.stage == "ingest" else "answers"
            bars.update(tasks[event.stage], total=event.total, completed=event.done,
                        description=f"{label} ({event.item})")

        return run_eval(service, spec, resume=resume, progress=on_progress)


def print_summary(run: RunData, console: Console, *, vs: RunData | None = None) -> None:
    """The per-mode table, the LLoCO ratios and, with ``vs``, the differences to another run."""
    summary = summarize(run)
    console.print(summary_table(summary))
    if summary.ratios:
        console.print(ratio_table(summary))
    if summary.paired:
        console.print(paired_table(summary.paired, "paired differences against rag (bootstrap 95 % interval)"))
    if vs is not None:
        from app.eval.stats import run_differences

        console.print(comparison_table(summary, summarize(vs)))
        across = run_differences(run, vs, summary.metric_names)
        if across:
            console.print(paired_table(across, f"{run.info.name} minus {vs.info.name}, paired by question"))


def runs_json(runs: list[RunData]) -> list[dict]:
    """What ``lloco eval list --json`` prints: per run, what the table shows, every metric's mean per mode."""
    out = []
    for run in runs:
        s = summarize(run)
        out.append({"id": run.info.id, "name": run.info.name, "dataset": run.info.dataset, "status": run.info.status,
                    "questions": s.n_questions, "planned": s.n_planned, "metric": s.primary,
                    "modes": {mode: {"n_ok": m.n_ok, "metrics": dict(m.metrics)} for mode in MODES
                              if (m := s.mode(mode))},
                    "created_at": run.info.created_at.isoformat()})
    return out


def runs_table(runs: list[RunData]) -> Table:
    """One line per run: its headline metric's mean per mode (with the number of answers)."""
    table = Table("id", "name", "dataset", "status", "questions", "metric", *MODES, "created")
    for run in runs:
        s = summarize(run)
        planned = f"/{s.n_planned}" if s.n_planned is not None else ""
        cells = [(f"{fmt(m.metrics.get(s.primary))} (n={m.n_ok})" if (m := s.mode(mode)) else "") for mode in MODES]
        table.add_row(str(run.info.id), run.info.name, run.info.dataset, run.info.status, f"{s.n_questions}{planned}",
                      s.primary, *cells, run.info.created_at.strftime("%Y-%m-%d %H:%M"))
    return table
