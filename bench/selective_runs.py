"""Issue 23's selective-answering figures over evaluation runs: per run and mode, and pooled per mode
(the AUROC target is pooled over the dev sets), each answer's confidence re-scored from its stored
signals by the models in ``--models`` (default: the shipped ones), so runs recorded before a model
was fitted are measured with it, and declined / marked by the thresholds the asked collection holds
now (``lloco collections calibrate``). Prints one JSON object per line, then a table.

    .venv/bin/python -m bench.selective_runs .cache/eval-nr:nr3-narrativeqa .cache/eval-nr:nr3-hotpotqa
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from app.config import Settings
    from app.core.confidence import auroc, load_models, thresholds_from_json
    from app.eval.selective import correctness_metric, row_signals, selective
    from app.eval.store import load_run
    from app.eval.tasks import METRICS
    from indexing.catalog import open_catalog
    from indexing.catalog_queries import collection_row
    from model.artifacts import shipped_confidence

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="HOME:RUN_NAME")
    parser.add_argument("--models", type=Path, default=None, help="confidence models JSON (default: shipped)")
    args = parser.parse_args(argv)
    models = load_models(args.models or shipped_confidence(Settings().decoder)) or None
    pooled: dict[str, tuple[list[float], list[bool]]] = {}
    table = []
    for ref in args.runs:
        home, _, name = ref.rpartition(":")
        settings = Settings(home=Path(home))
        sessions = open_catalog(settings.resolved_database_url)
        run = load_run(sessions, name)
        names = METRICS[run.info.dataset]
        asked = run.info.settings.get("off_collection") or run.info.settings["collection"]
        thresholds = thresholds_from_json(collection_row(sessions, asked).thresholds) or None  # as calibrated now
        for s in selective(run, names, models=models, thresholds=thresholds):
            print(json.dumps({"run": name, "asked": asked, "calibrated": thresholds is not None,
                              **{k: v for k, v in asdict(s).items() if k != "curve"}}))
            table.append((name, s))
        metric = correctness_metric(names)
        for r in run.rows:
            v = r.details.get("verification")
            if r.status != "ok" or not v or metric not in r.score:
                continue
            model = (models or {}).get(r.mode)
            conf = model(row_signals(r)) if model else v.get("confidence")
            if conf is None:
                continue
            c, y = pooled.setdefault(r.mode, ([], []))
            c.append(conf)
            y.append(r.score[metric] > 0)
    print(f"{'run':28} {'mode':6} {'n':>4} {'right':>6} {'AUROC':>6} {'answered':>8} {'supported':>9} {'right(sup)':>10}")
    for name, s in table:
        au = "-" if s.auroc is None else f"{s.auroc:.3f}"
        sup = "-" if s.supported_accuracy is None else f"{s.supported_accuracy:.3f}"
        print(f"{name:28} {s.mode:6} {s.n:4} {s.accuracy:6.3f} {au:>6} {s.coverage:8.0%} {s.supported_share:9.0%} {sup:>10}")
        if (a := s.abstention) is not None:
            print(f"{'':28} declined: {a.declined_answerable:.0%} of {a.answerable} answerable, "
                  f"{a.declined_unanswerable:.0%} of {a.unanswerable} unanswerable; AUROC (answerable) "
                  f"{'-' if a.auroc is None else f'{a.auroc:.3f}'}")
    for mode, (c, y) in pooled.items():
        a = auroc(c, y)
        print(f"pooled {mode}: {len(y)} answers, {sum(y)} right, AUROC {'-' if a is None else f'{a:.3f}'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
