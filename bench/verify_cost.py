"""What verification costs lloco (issue 23's target: <= 10 % of its time per answer), in one run:
the demo's questions asked in lloco mode on the demo collection (built if missing), each answer's
time to its last token (total_s) beside its check's (verify_s); prints the per-answer means and the
ratio. Run it alone (no training or evaluation beside it).

    .venv/bin/python -m bench.verify_cost [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics


def main(argv: list[str] | None = None) -> int:
    from app.cli.demo import ensure_demo_collection
    from app.config import Settings
    from app.core.demo import DEMO_COLLECTION, demo_questions
    from app.core.service import LlocoService

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="times each question is asked")
    args = parser.parse_args(argv)
    service = LlocoService(Settings())
    ensure_demo_collection(service)
    questions = [qa["question"] for qa in demo_questions()]
    service.ask(DEMO_COLLECTION, questions[0], mode="lloco").read()  # warm-up: models loaded, caches filled
    answers = [service.ask(DEMO_COLLECTION, q, mode="lloco").read() for _ in range(args.repeat) for q in questions]
    total = statistics.mean(a.total_s for a in answers)
    verify = statistics.mean(a.verify_s for a in answers)
    print(json.dumps({"answers": len(answers), "mean_total_s": round(total, 4), "mean_verify_s": round(verify, 5),
                      "verify_over_total": round(verify / total, 4)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
