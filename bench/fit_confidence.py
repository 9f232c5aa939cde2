"""Fit the shipped answer-confidence models (issue 23) on synthetic questions, never on gold ones.

Cloze questions are made from the chunks of the given collections (``app.training.calibrate``: a
number or a name blanked in a sentence), answered in each mode by the shipped decoder and reader,
and labelled by answer recall of the blanked words — with, for each, questions made from the other
collections' text (``--foreign`` per own question), labelled wrong: what it should decline; one logistic model per mode is fitted on their
verification signals (``app.core.confidence.fit_confidence``). Writes the models (what
``LlocoService.confidence_models`` loads) and, beside them, the fit's log: command, collections,
every answer's signals and label, each mode's weights and in-sample AUROC.

``--runs HOME:RUN ...`` adds the answers of stored evaluation runs (their verification signals,
labelled by answer recall; an off-collection run's answers count as foreign): real questions, whose
answers look like the product's, where cloze questions' answers are one blanked word. Only runs on
questions no evaluation asks — say NarrativeQA's stories past the evaluated ones
(``--skip-docs 47``: the evaluation reads stories 41-47), never a set's evaluated questions. ``--questions 0`` fits on runs alone.

    LLOCO_HOME=.cache/eval-nr .venv/bin/python -m bench.fit_confidence eval-narrativeqa eval-hotpotqa \
        --questions 60 --out model/shipped/smollm2-135m/confidence.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from app.config import Settings
    from app.core.confidence import auroc, fit_confidence, save_models
    from app.core.service import LlocoService
    from app.training.calibrate import CALIBRATION_MODES, synthetic_answers

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("collections", nargs="*")
    parser.add_argument("--runs", nargs="*", default=[], help="HOME:RUN evaluation runs whose answers are added")
    parser.add_argument("--questions", type=int, default=60, help="cloze questions per collection and mode")
    parser.add_argument("--seed", type=int, default=1, help="which questions (calibration draws with seed 0)")
    parser.add_argument("--foreign", type=float, default=0.5,
                        help="questions made from the other collections' text per own question (labelled wrong)")
    parser.add_argument("--l2", type=float, default=1.0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    service = LlocoService(Settings())
    started, answers = time.perf_counter(), []
    for ref in args.runs:
        answers += run_answers(ref, CALIBRATION_MODES)
    for name in args.collections if args.questions else []:
        got = synthetic_answers(service, name, modes=CALIBRATION_MODES, questions=args.questions, seed=args.seed,
                                foreign=args.foreign, progress=lambda i, n, name=name: print(f"\r{name}: {i}/{n}", end="", file=sys.stderr))
        print(file=sys.stderr)
        answers += [(name, a) for a in got]
    where = ", ".join([*(f"cloze questions of {c} (seed {args.seed})" for c in args.collections if args.questions),
                       *(f"run {r}" for r in args.runs)])
    models, log = {}, {"command": " ".join(sys.argv), "collections": args.collections, "runs": args.runs,
                       "questions": args.questions,
                       "foreign": args.foreign, "seed": args.seed, "l2": args.l2, "modes": {}}
    for mode in CALIBRATION_MODES:
        mine = [a for _, a in answers if a.mode == mode]
        model = fit_confidence([a.signals for a in mine], [a.right for a in mine], l2=args.l2,
                               source=where)
        models[mode] = model
        log["modes"][mode] = {"n": len(mine), "right": sum(a.right for a in mine),
                              "foreign": sum(a.foreign for a in mine),
                              "auroc_in_sample": auroc([model(a.signals) for a in mine], [a.right for a in mine]),
                              "weights": model.contributions()}
        print(f"{mode}: {len(mine)} answers, {sum(a.right for a in mine)} right, in-sample AUROC "
              f"{log['modes'][mode]['auroc_in_sample']:.3f}; weights "
              + ", ".join(f"{k} {v:+.2f}" for k, v in model.contributions().items()))
    log["seconds"] = round(time.perf_counter() - started, 1)
    log["answers"] = [{"collection": name, **asdict(a)} for name, a in answers]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_models(models, args.out)
    args.out.with_name(args.out.stem + "-fit.json").write_text(json.dumps(log, indent=1) + "\n")
    return 0


def run_answers(ref: str, modes: tuple[str, ...]) -> list[tuple[str, object]]:
    """(``ref``, answer) for each verified row of the stored run ``HOME:RUN`` in ``modes``: its signals
    (:func:`app.eval.selective.row_signals`), right when its answer recall is above 0."""
    from app.config import Settings
    from app.eval.selective import correctness_metric, row_signals
    from app.eval.store import load_run
    from app.eval.tasks import METRICS
    from app.training.calibrate import SyntheticAnswer
    from indexing.catalog import open_catalog

    home, _, name = ref.rpartition(":")
    run = load_run(open_catalog(Settings(home=Path(home)).resolved_database_url), name)
    metric, foreign = correctness_metric(METRICS[run.info.dataset]), bool(run.info.settings.get("off_collection"))
    out = []
    for r in run.rows:
        v = r.details.get("verification")
        if r.mode in modes and r.status == "ok" and v and metric in r.score:
            right = not foreign and r.score[metric] > 0
            out.append((ref, SyntheticAnswer(r.mode, row_signals(r), v.get("confidence") or 0.0, right, foreign)))
    return out


if __name__ == "__main__":
    raise SystemExit(main())
