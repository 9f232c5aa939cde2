"""Issue 23's cost of a second look: per arm (HOME:RUN:MODE), the mean time to the *shown* answer's
first token (the first answer's when it was kept, else when the kept second answer replaced it), the
mean total time, how many questions looked again and how many second answers were kept, and each
arm's ratio to the first arm given (RAG, say). Same questions only (those every arm answered).

    .venv/bin/python -m bench.doubt_costs .cache/eval-nr:nr3-hotpotqa:rag .cache/eval-nr:doubt-rag-hotpotqa:lloco
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path


def shown_ttft(row) -> float | None:  # noqa: ANN001 - an app.eval.store.RowData
    look = row.details.get("second_look")
    if look and look.get("kept") == "second":
        return look.get("replaced_at_s")
    return row.ttft_s


def main(argv: list[str] | None = None) -> int:
    from app.config import Settings
    from app.eval.store import load_run
    from indexing.catalog import open_catalog

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("arms", nargs="+", help="HOME:RUN:MODE")
    args = parser.parse_args(argv)
    arms = []
    for ref in args.arms:
        home, run_name, mode = ref.rsplit(":", 2)
        run = load_run(open_catalog(Settings(home=Path(home)).resolved_database_url), run_name)
        arms.append((ref, {r.qid: r for r in run.rows if r.mode == mode and r.status == "ok"}))
    common = set.intersection(*(set(rows) for _, rows in arms))
    base = None
    for ref, rows in arms:
        picked = [rows[q] for q in sorted(common)]
        ttft = statistics.mean(t for r in picked if (t := shown_ttft(r)) is not None)
        total = statistics.mean(r.total_s for r in picked if r.total_s is not None)
        looks = [r.details["second_look"] for r in picked if r.details.get("second_look")]
        base = base or (ttft, total)
        print(json.dumps({"arm": ref, "questions": len(picked), "shown_ttft_s": round(ttft, 3), "total_s": round(total, 3),
                          "looked_again": len(looks), "kept_second": sum(lk["kept"] == "second" for lk in looks),
                          "ttft_ratio": round(ttft / base[0], 3), "total_ratio": round(total / base[1], 3)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
