"""Paired A/B of two compressors on the fact probe: the same held-out pairs, facts reproduced from S.

For each compression (A of 256, 128 and 64 tokens: 32x, 16x and 8x at kappa 8) and pooled over
them, prints each checkpoint's fact recall (and gap closed), the difference B - A and its 95 %
bootstrap interval, resampling *pairs* (a pair's facts move together: a cluster bootstrap, 10,000
seeded resamples). Writes the figures as JSON with --out.

Usage: .venv/bin/python -m bench.fact_probe_ab --a runs/cont-plain --b runs/cont-facts [--out FILE]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

SPECS = ((256, 32), (128, 24), (64, 24))  # (A tokens, pairs): bench/train_shipped.sh eval-compressor's
RESAMPLES = 10_000


def cluster_interval(hits_a: list[int], hits_b: list[int], facts: list[int], *, seed: int = 0) -> tuple[float, float]:
    """95 % percentile interval of sum(hits_b - hits_a) / sum(facts) over pairs resampled with replacement."""
    import numpy as np

    diff, n = np.asarray(hits_b) - np.asarray(hits_a), np.asarray(facts)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(n), size=(RESAMPLES, len(n)))
    stats = diff[idx].sum(axis=1) / np.maximum(n[idx].sum(axis=1), 1)
    lo, hi = np.percentile(stats, [2.5, 97.5])
    return float(lo), float(hi)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", required=True, help="the baseline compressor checkpoint")
    parser.add_argument("--b", required=True, help="the compressor compared with it")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args()

    from app.core.service import LlocoService
    from model.eval_compressor import evaluate_compressor, open_compressor, spec_for

    svc = LlocoService()
    results: dict[str, dict] = {}
    for label, ckpt in (("a", args.a), ("b", args.b)):
        compressor, training = open_compressor(ckpt, svc.decoder, kappa=svc.settings.summary_tokens)
        for a_tokens, pairs in SPECS:
            spec = spec_for(training, {"pairs": pairs, "min_segment": a_tokens, "max_segment": a_tokens})
            results.setdefault(str(a_tokens), {})[label] = evaluate_compressor(svc.decoder, compressor, spec)
    rows, pooled = [], {"a": [], "b": [], "n": []}
    for a_tokens, pair in results.items():
        a, b = pair["a"], pair["b"]
        assert a["facts_per_pair"] == b["facts_per_pair"], "the two checkpoints were not scored on the same pairs"
        lo, hi = cluster_interval(a["fact_hits_per_pair"], b["fact_hits_per_pair"], a["facts_per_pair"])
        rows.append({"compression": f"{a['compression']:.0f}x", "pairs": a["pairs"], "facts": a["facts"],
                     "fact_recall_a": a["fact_recall"], "fact_recall_b": b["fact_recall"],
                     "difference": b["fact_recall"] - a["fact_recall"], "interval": [lo, hi],
                     "fact_recall_none": a["fact_recall_none"], "gap_closed_a": a["gap_closed"], "gap_closed_b": b["gap_closed"]})
        pooled["a"] += a["fact_hits_per_pair"]
        pooled["b"] += b["fact_hits_per_pair"]
        pooled["n"] += a["facts_per_pair"]
    total = sum(pooled["n"])
    lo, hi = cluster_interval(pooled["a"], pooled["b"], pooled["n"])
    rows.append({"compression": "pooled", "pairs": len(pooled["n"]), "facts": total,
                 "fact_recall_a": sum(pooled["a"]) / total, "fact_recall_b": sum(pooled["b"]) / total,
                 "difference": (sum(pooled["b"]) - sum(pooled["a"])) / total, "interval": [lo, hi]})
    print(f"A = {args.a}, B = {args.b}: fact recall from S on the same held-out pairs")
    print("| compression | pairs | facts | A | B | B - A [95 %] | gap closed A / B |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        gaps = f"{r['gap_closed_a']:.1%} / {r['gap_closed_b']:.1%}" if "gap_closed_a" in r else ""
        print(f"| {r['compression']} | {r['pairs']} | {r['facts']} | {r['fact_recall_a']:.1%} | {r['fact_recall_b']:.1%} | "
              f"{r['difference']:+.1%} [{r['interval'][0]:+.1%}, {r['interval'][1]:+.1%}] | {gaps} |")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"a": args.a, "b": args.b, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
