"""Fit the shipped answer-confidence models (issue 23) on synthetic questions, never on gold ones.

Cloze questions are made from the chunks of the given collections (``app.training.calibrate``: a
number or a name blanked in a sentence), answered in each mode by the shipped decoder and reader,
and labelled by answer recall of the blanked words — with, for each, questions made from the other
collections' text (``--foreign`` per own question), labelled wrong: what it should decline; one logistic model per mode is fitted on their
verification signals (``app.core.confidence.fit_confidence``). Writes the models (what
``LlocoService.confidence_models`` loads) and, beside them, the fit's log: command, collections,
every answer's signals and label, each mode's weights and in-sample AUROC.

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
    parser.add_argument("collections", nargs="+")
    parser.add_argument("--questions", type=int, default=60, help="cloze questions per collection and mode")
    parser.add_argument("--seed", type=int, default=1, help="which questions (calibration draws with seed 0)")
    parser.add_argument("--foreign", type=float, default=0.5,
                        help="questions made from the other collections' text per own question (labelled wrong)")
    parser.add_argument("--l2", type=float, default=1.0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    service = LlocoService(Settings())
    started, answers = time.perf_counter(), []
    for name in args.collections:
        got = synthetic_answers(service, name, modes=CALIBRATION_MODES, questions=args.questions, seed=args.seed,
                                foreign=args.foreign, progress=lambda i, n, name=name: print(f"\r{name}: {i}/{n}", end="", file=sys.stderr))
        print(file=sys.stderr)
        answers += [(name, a) for a in got]
    models, log = {}, {"command": " ".join(sys.argv), "collections": args.collections, "questions": args.questions,
                       "foreign": args.foreign, "seed": args.seed, "l2": args.l2, "modes": {}}
    for mode in CALIBRATION_MODES:
        mine = [a for _, a in answers if a.mode == mode]
        model = fit_confidence([a.signals for a in mine], [a.right for a in mine], l2=args.l2,
                               source=f"cloze questions of {', '.join(args.collections)} (seed {args.seed})")
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


if __name__ == "__main__":
    raise SystemExit(main())
