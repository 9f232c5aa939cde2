"""FAISS retrieval latency p50/p95 at 10k, 100k and 1M vectors, through lloco's own FaissStore
(IndexIDMap2 over exact inner product, chunk ids as FAISS ids), with synthetic normalized vectors.

    .venv/bin/python bench/faiss_latency.py [--sizes 10000,100000,1000000] [--queries 200] [--dim 384] [--k 4]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def measure(size: int, *, dim: int, queries: int, k: int, seed: int = 0) -> dict:
    import numpy as np

    from indexing.faiss_store import FaissStore

    rng = np.random.default_rng(seed)
    store = FaissStore(Path(tempfile.mkdtemp(prefix="lloco-faiss-")), dim)
    step = 100_000  # add in blocks: (step, dim) float32 at a time
    started = time.perf_counter()
    for first in range(0, size, step):
        block = rng.standard_normal((min(step, size - first), dim), dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        store.add(list(range(first + 1, first + 1 + len(block))), block)
    add_s = time.perf_counter() - started
    qs = rng.standard_normal((queries, dim), dtype=np.float32)
    qs /= np.linalg.norm(qs, axis=1, keepdims=True)
    store.search(qs[0], k)  # warm-up
    times = []
    for q in qs:
        t = time.perf_counter()
        store.search(q, k)
        times.append(time.perf_counter() - t)
    ms = np.array(times) * 1000
    return {"vectors": size, "add_s": add_s, "p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--k", type=int, default=4)
    args = parser.parse_args()
    import faiss

    print(f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} threads, dim {args.dim}, k {args.k}, {args.queries} queries")
    print("| vectors | build (s) | p50 (ms) | p95 (ms) |\n|---|---|---|---|")
    for size in (int(s) for s in args.sizes.split(",")):
        r = measure(size, dim=args.dim, queries=args.queries, k=args.k)
        print(f"| {r['vectors']:,} | {r['add_s']:.1f} | {r['p50_ms']:.2f} | {r['p95_ms']:.2f} |")


if __name__ == "__main__":
    main()
