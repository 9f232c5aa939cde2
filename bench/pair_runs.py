"""Paired differences between evaluation runs kept in different homes (say, collections built with
two compressors), by question: per metric, a's mean, b's mean, a - b with its bootstrap 95 %
interval, wins, verdict.

Usage: .venv/bin/python -m bench.pair_runs HOME_A:RUN_A:MODE_A HOME_B:RUN_B:MODE_B [more pairs ...]
(pairs of arguments; each names a home folder, a run name or id in it, and one of its modes)
"""

from __future__ import annotations

import argparse


def load(spec: str):
    """(label, rows of one mode, metric names) of HOME:RUN:MODE."""
    from app.eval import store
    from app.eval.summary import summarize
    from indexing.catalog import open_catalog

    home, run, mode = spec.rsplit(":", 2)
    data = store.load_run(open_catalog(f"sqlite:///{home}/lloco.db"), int(run) if run.isdigit() else run)
    return f"{data.info.name} {mode}", data.rows, mode, summarize(data).metric_names


def main() -> None:
    from app.eval.report import fmt
    from app.eval.stats import paired_diff, scores_by_question

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="+", help="HOME:RUN:MODE, in pairs (a then b)")
    args = parser.parse_args()
    if len(args.specs) % 2:
        parser.error("give the runs in pairs: a b [a b ...]")
    print("| a vs b | metric | n | a | b | a - b [95 % interval] | wins a/b/ties | verdict |")
    print("|---|---|---|---|---|---|---|---|")
    for a_spec, b_spec in zip(args.specs[::2], args.specs[1::2], strict=True):
        (a_label, a_rows, a_mode, metrics), (b_label, b_rows, b_mode, _) = load(a_spec), load(b_spec)
        for metric in metrics:
            d = paired_diff(metric, scores_by_question(a_rows, a_mode, metric), scores_by_question(b_rows, b_mode, metric),
                            a_label=a_label, b_label=b_label)
            if d is None:
                continue
            print(f"| {a_label} vs {b_label} | {metric} | {d.n} | {fmt(d.mean_a)} | {fmt(d.mean_b)} | "
                  f"{d.diff:+.3f} [{d.low:+.3f}, {d.high:+.3f}] | {d.wins}/{d.losses}/{d.ties} | {d.verdict} |")


if __name__ == "__main__":
    main()
