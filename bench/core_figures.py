"""Core figures in one run: model load (cold and cached), ingestion throughput of a long PDF, and
one question in each mode with prompt tokens, time to first token and total time, as ratios.

    .venv/bin/python bench/core_figures.py --pdf ../shared/eval-data/financebench/pdfs/ADOBE_2022_10K.pdf \
        --question "What was Adobe's total revenue in fiscal 2022?"

A script, not a test: it prints a Markdown table and writes JSON with --json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def timed(fn):
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started


def load_times(cache: Path) -> dict:
    """Cold: dequantize the GGUF into an empty cache. Cached: load the converted folder."""
    import torch

    from model.loading import load_decoder
    from model.registry import resolve_decoder

    cold_dir = Path(tempfile.mkdtemp(prefix="lloco-cold-"))
    try:
        folder, convert_s = timed(lambda: resolve_decoder("smollm2-135m", cold_dir))
        decoder, first_load_s = timed(lambda: load_decoder(folder, name="smollm2-135m", device="cpu", dtype=torch.float32))
    finally:
        shutil.rmtree(cold_dir, ignore_errors=True)
    folder = resolve_decoder("smollm2-135m", cache)
    _, cached_s = timed(lambda: load_decoder(folder, name="smollm2-135m", device="cpu", dtype=torch.float32))
    return {"decoder_cold_s": convert_s + first_load_s, "decoder_cached_s": cached_s}


def ingest_figures(service, pdf: Path) -> dict:
    marks: dict[str, float] = {}
    service.create_collection("bench")
    started = time.perf_counter()
    [result] = service.ingest("bench", [pdf], progress=lambda e: marks.setdefault(e.stage, time.perf_counter()))
    total = time.perf_counter() - started
    if result.status != "ingested":
        raise SystemExit(f"ingestion failed: {result.error}")
    order = ["parse", "chunk", "embed", "compress", "index", "done"]
    stages = {f"{a}_s": marks[b] - marks[a] for a, b in zip(order, order[1:], strict=False)}
    return {"pages": result.n_pages, "chunks": result.n_chunks, "ingest_s": total,
            "pages_per_s": result.n_pages / total, "chunks_per_s": result.n_chunks / total,
            "chunks_compressed_per_s": result.n_chunks / stages["compress_s"], **stages}


def ask_figures(service, question: str, top_k: int) -> dict:
    out = {}
    for mode in ("lloco", "rag", "full"):
        service.ask("bench", question, mode=mode, top_k=top_k).read()  # warm-up: caches, allocator
        answer = service.ask("bench", question, mode=mode, top_k=top_k).read()
        out[mode] = {"prompt_tokens": answer.prompt_tokens, "ttft_s": answer.ttft_s, "total_s": answer.total_s,
                     "generated_tokens": answer.generated_tokens, "answer": answer.text,
                     "top_page": answer.citations[0].page if answer.citations else None}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pdf", type=Path, required=True)
    parser.add_argument("--question", required=True)
    parser.add_argument("--top-k", type=int, default=4)
    parser.add_argument("--model-cache", type=Path, default=Path(".cache/models"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import torch

    from app.config import Settings
    from app.core.service import LlocoService

    figures = {"threads": torch.get_num_threads(), **load_times(args.model_cache)}
    with tempfile.TemporaryDirectory(prefix="lloco-bench-") as home:
        service = LlocoService(Settings(home=Path(home), model_cache=args.model_cache))
        _, figures["embedder_load_s"] = timed(lambda: service.embedder)
        figures["dtype"] = str(service.decoder.dtype)
        figures.update(ingest_figures(service, args.pdf))
        figures["modes"] = ask_figures(service, args.question, args.top_k)
    figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print_table(figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


def print_table(f: dict) -> None:
    print(f"decoder load: cold {f['decoder_cold_s']:.1f} s (GGUF dequantize + save + load), cached {f['decoder_cached_s']:.2f} s; "
          f"embedder load {f['embedder_load_s']:.1f} s; dtype {f['dtype']}; {f['threads']} threads")
    print(f"ingestion: {f['pages']} pages, {f['chunks']} chunks in {f['ingest_s']:.1f} s = {f['pages_per_s']:.2f} pages/s, "
          f"{f['chunks_per_s']:.2f} chunks/s end to end; compression alone {f['chunks_compressed_per_s']:.2f} chunks/s")
    print("stages: " + ", ".join(f"{k[:-2]} {v:.1f} s" for k, v in f.items() if k.endswith("_s") and k[:-2] in
                                 ("parse", "chunk", "embed", "compress", "index")))
    m = f["modes"]
    print("\n| mode | prompt tokens | time to first token (s) | total (s) | generated tokens | top cited page |")
    print("|---|---|---|---|---|---|")
    for mode, r in m.items():
        print(f"| {mode} | {r['prompt_tokens']} | {r['ttft_s']:.2f} | {r['total_s']:.2f} | {r['generated_tokens']} | {r['top_page']} |")
    for base in ("rag", "full"):
        print(f"| lloco/{base} ratio | {m['lloco']['prompt_tokens'] / m[base]['prompt_tokens']:.3f} | "
              f"{m['lloco']['ttft_s'] / m[base]['ttft_s']:.3f} | {m['lloco']['total_s'] / m[base]['total_s']:.3f} | | |")
    print(f"\npeak RSS {f['peak_rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
