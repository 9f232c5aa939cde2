"""Loops in stored evaluation answers (issue 27): per run and mode, the answers with a word 3-gram
repeated, and those that ran to the token cap.

Usage: .venv/bin/python -m bench.loop_counts HOME RUN [RUN ...] [--cap 96]
"""
import argparse
import re

from app.eval import store
from indexing.catalog import open_catalog

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("home")
parser.add_argument("runs", nargs="+")
parser.add_argument("--cap", type=int, default=96, help="the runs' max_new_tokens")
args = parser.parse_args()
s = open_catalog(f"sqlite:///{args.home}/lloco.db")
for run in args.runs:
    data = store.load_run(s, run)
    for mode in data.info.modes:
        rows = [r for r in data.rows if r.mode == mode and r.status == "ok"]
        def looped(t):
            w = re.findall(r"\w+|[^\w\s]", t or "")
            g = [tuple(w[i:i+3]) for i in range(len(w)-2)]
            return len(g) != len(set(g))
        capped = sum(1 for r in rows if (r.generated_tokens or 0) >= args.cap)
        print(run, mode, "answers", len(rows), "with a repeated word 3-gram", sum(looped(r.prediction) for r in rows),
              f"at the {args.cap}-token cap", capped, "mean total_s %.2f" % (sum(r.total_s or 0 for r in rows)/max(len(rows),1)))
