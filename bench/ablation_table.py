"""One Markdown table over several evaluation runs: each mode's mean per metric, its paired
difference against RAG with the bootstrap 95 % interval and verdict, its share of RAG's score and
its context tokens over RAG's. The figures of docs/RESULTS.md §5 come from here.

Usage: LLOCO_HOME=... .venv/bin/python -m bench.ablation_table [--baseline-prefix P] RUN|NAME=RUN ...
A run given as NAME=RUN is shown under NAME. A run without rag mode (say, lloco only, with another
reader) is paired with the rag rows of the run ``P-<dataset>`` (default P: expansion), same questions.
"""

from __future__ import annotations

import argparse

from app.eval.report import fmt
from app.eval.summary import summarize, summarize_mode
from app.eval.runner import load_run
from app.eval.stats import paired_diff, scores_by_question
from app.core.service import LlocoService


def rows_for(label: str, run, baseline=None) -> list[list[str]]:
    """Table rows of one run: one per (mode other than rag, metric); rag's rows come from the run
    itself or else from ``baseline`` (another run on the same questions)."""
    summary = summarize(run)
    rag = summary.mode("rag")
    paired = {(d.a, d.metric): d for d in summary.paired}
    if rag is None and baseline is not None:
        rag = summarize_mode("rag", baseline.rows, summary.metric_names)
        for mode in summary.modes:
            for metric in summary.metric_names:
                d = paired_diff(metric, scores_by_question(run.rows, mode.mode, metric),
                                scores_by_question(baseline.rows, "rag", metric), a_label=mode.mode, b_label="rag")
                if d is not None:
                    paired[mode.mode, metric] = d
    out = []
    for mode in summary.modes:
        if mode.mode == "rag":
            continue
        ratio = mode.context_tokens / rag.context_tokens if rag and rag.context_tokens and mode.context_tokens else None
        for metric in summary.metric_names:
            d = paired.get((mode.mode, metric))
            share = d.mean_a / d.mean_b if d and d.mean_b else None
            out.append([label, mode.mode, metric, str(d.n if d else mode.n_ok), fmt(mode.metrics.get(metric)),
                        fmt(rag.metrics.get(metric)) if rag else "-",
                        f"{d.diff:+.3f} [{d.low:+.3f}, {d.high:+.3f}]" if d else "-", d.verdict if d else "-",
                        f"{share:.0%}" if share is not None else "-", fmt(ratio),
                        f"{1 / ratio:.1f}x" if ratio else "-"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run names or ids (NAME=RUN shows the run under NAME)")
    parser.add_argument("--baseline-prefix", default="expansion", help="rag rows for runs without: run PREFIX-<dataset>")
    args = parser.parse_args()
    service = LlocoService()
    header = ["set", "mode", "metric", "n", "mode mean", "rag mean", "mode - rag [95 % interval]", "verdict",
              "share of rag", "context / rag", "fewer context tokens"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for item in args.runs:
        label, _, ref = item.rpartition("=")
        run = load_run(service, ref)
        baseline = None
        if "rag" not in {r.mode for r in run.rows}:
            baseline = load_run(service, f"{args.baseline_prefix}-{run.info.dataset}")
        for row in rows_for(label or run.info.dataset, run, baseline):
            print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
