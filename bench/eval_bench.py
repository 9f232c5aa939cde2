"""The benchmark in one run: the same questions through lloco, rag and full; ratios LLoCO/RAG and
LLoCO/full for prompt tokens, time to first token, end-to-end latency and questions per minute;
peak memory; ingestion throughput of the run's documents; FAISS latency p50/p95 at 10k/100k/1M.

    .venv/bin/python bench/eval_bench.py --dataset quality --path ../shared/eval-data/quality/quality.jsonl \
        --limit 8 [--max-new-tokens 16] [--faiss-sizes 10000,100000,1000000] [--json out.json]

A fresh home each run, so ingestion (chunk, embed, compress, index) is measured too.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--limit", type=int, default=8)
    parser.add_argument("--top-k", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--model-cache", type=Path, default=Path(".cache/models"))
    parser.add_argument("--faiss-sizes", default="10000,100000,1000000")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from app.config import Settings
    from app.eval.summary import summarize
    from app.eval.runner import EvalSpec, load_run, run_eval
    from app.core.service import LlocoService
    from bench.faiss_latency import measure

    out: dict = {}
    with tempfile.TemporaryDirectory(prefix="lloco-evalbench-") as home:
        service = LlocoService(Settings(home=Path(home), model_cache=args.model_cache, max_new_tokens=args.max_new_tokens))
        _ = service.compressor, service.embedder  # model loading is not ingestion
        marks: dict[str, float] = {}

        def on_progress(event) -> None:
            marks.setdefault(f"{event.stage}_start", time.perf_counter())
            marks[f"{event.stage}_end"] = time.perf_counter()

        spec = EvalSpec(dataset=args.dataset, path=args.path, limit=args.limit, top_k=args.top_k, run_name="bench")
        run = load_run(service, run_eval(service, spec, progress=on_progress))
        info = service.get_collection(spec.collection)
        pages = sum(d.n_pages for d in service.list_documents(spec.collection))
        ingest_s = marks["ingest_end"] - marks["ingest_start"]
        out["ingestion"] = {"documents": info.n_documents, "pages": pages, "chunks": info.n_chunks, "seconds": ingest_s,
                            "pages_per_s": pages / ingest_s, "chunks_per_s": info.n_chunks / ingest_s}
        out["summary"] = summarize(run).to_dict()
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["faiss"] = [measure(int(n), dim=384, queries=200, k=4) for n in args.faiss_sizes.split(",")]
    report(out)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=str))


def report(out: dict) -> None:
    s, ing = out["summary"], out["ingestion"]
    print(f"{s['run']['dataset']}: {s['n_questions']} questions, every mode; primary metric {s['primary']}")
    print("\n| mode | ok | failed | " + " | ".join(s["metric_names"]) + " | prompt tokens | TTFT (s) | total (s) | questions/min |")
    print("|---|---|---|" + "---|" * len(s["metric_names"]) + "---|---|---|---|")
    for m in s["modes"]:
        metrics = " | ".join(_f(m["metrics"].get(k)) for k in s["metric_names"])
        print(f"| {m['mode']} | {m['n_ok']} | {m['n_failed']} | {metrics} | {_f(m['prompt_tokens'], 1)} | {_f(m['ttft_s'], 2)} | "
              f"{_f(m['total_s'], 2)} | {_f(m['questions_per_min'], 1)} |")
    print("\n| ratio | prompt tokens | TTFT | total | questions/min |\n|---|---|---|---|---|")
    for name, r in s["ratios"].items():
        print(f"| {name} | " + " | ".join(_f(r.get(k)) for k in ("prompt_tokens", "ttft_s", "total_s", "questions_per_min")) + " |")
    print(f"\ningestion: {ing['documents']} documents, {ing['pages']} pages, {ing['chunks']} chunks in {ing['seconds']:.1f} s = "
          f"{ing['pages_per_s']:.2f} pages/s, {ing['chunks_per_s']:.2f} chunks/s (parse + chunk + embed + compress + index)")
    print(f"peak RSS {out['peak_rss_mb']:.0f} MB")
    print("\n| FAISS vectors | p50 (ms) | p95 (ms) |\n|---|---|---|")
    for r in out["faiss"]:
        print(f"| {r['vectors']:,} | {r['p50_ms']:.2f} | {r['p95_ms']:.2f} |")


def _f(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


if __name__ == "__main__":
    main()
