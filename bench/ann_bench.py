"""Approximate retrieval at scale (issue 14, item 4): a collection's FAISS index exact (IndexFlatIP
behind IndexIDMap2, as below ``ann_threshold``) and approximate (IVF-SQ8, as above it), on the same
vectors and questions, through :class:`indexing.faiss_store.FaissStore` itself: build time, index
size, search latency p50/p95 (one question at a time, as a user asks), recall@10 against exact
search, and a restricted search (one "document" of 50 chunks). Run it alone: it times searches.

Vectors: ``--n`` of them, 384-dim (MiniLM's), drawn around ``--centres`` random directions (real
embeddings cluster by topic; uniform random vectors would be the worst case for any ANN index).

Usage: .venv/bin/python -m bench.ann_bench --n 100000 1000000 [--queries 200]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

DIM = 384


def clustered(n: int, *, seed: int, centres: int, spread: float = 0.6) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, DIM)).astype(np.float32)
    out = np.empty((n, DIM), dtype=np.float32)
    for start in range(0, n, 100_000):  # in blocks: 1M x 384 float32 is 1.5 GB already
        m = min(100_000, n - start)
        x = c[rng.integers(0, centres, m)] + spread * rng.standard_normal((m, DIM)).astype(np.float32)
        out[start:start + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def timed_searches(store, queries: np.ndarray, k: int, ids: list[int] | None = None) -> tuple[list[list[int]], list[float]]:
    found, ms = [], []
    for q in queries:
        t = time.perf_counter()
        hits = store.search(q, k, ids=ids)
        ms.append((time.perf_counter() - t) * 1000)
        found.append([i for i, _ in hits])
    return found, ms


def main() -> None:
    from indexing.faiss_store import FaissStore

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--centres", type=int, default=2000)
    args = parser.parse_args()
    print("| vectors | index | build s | file MB | p50 ms | p95 ms | recall@10 | restricted p95 ms | restricted recall@10 |\n"
          "|---|---|---|---|---|---|---|---|---|")
    for n in args.n:
        vectors = clustered(n, seed=0, centres=args.centres)
        queries = clustered(args.queries, seed=1, centres=args.centres)
        ids = np.arange(1, n + 1, dtype=np.int64)
        document = sorted(np.random.default_rng(2).choice(ids, 50, replace=False).tolist())
        results = {}
        for kind, threshold in (("flat", None), ("ivf", 1)):
            with tempfile.TemporaryDirectory() as tmp:
                store = FaissStore(Path(tmp), DIM, ann_threshold=threshold)
                t = time.perf_counter()
                for start in range(0, n, 100_000):  # as ingestion adds them: in batches
                    store.add(ids[start:start + 100_000].tolist(), vectors[start:start + 100_000])
                    if store.outgrown():  # as CollectionIndex.add_chunks does, from the exact vectors (SQL's)
                        store.retrain(ids[:start + 100_000], vectors[:start + 100_000])
                build = time.perf_counter() - t
                store.save()
                size = store.path.stat().st_size / 2**20
                assert store.kind == kind
                timed_searches(store, queries[:10], 10)  # warm-up
                found, ms = timed_searches(store, queries, 10)
                restricted, rms = timed_searches(store, queries[:50], 10, ids=document)
                results[kind] = found, restricted
                recall = (np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, results["flat"][0], strict=True)]))
                exact_r = np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(restricted, results["flat"][1], strict=True)])
                print(f"| {n:,} | {kind} | {build:.1f} | {size:.0f} | {np.percentile(ms, 50):.2f} | {np.percentile(ms, 95):.2f} | "
                      f"{recall:.3f} | {np.percentile(rms, 95):.2f} | {exact_r:.3f} |", flush=True)
                del store


if __name__ == "__main__":
    main()
