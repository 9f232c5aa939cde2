"""Compression throughput against the decoder's raw forward throughput on the same tokens (issue 14,
ingestion target: compression >= 80 % of raw forward), in one run.

The chunks are ingestion's own (a PDF parsed and chunked by the service's Deriver, as `lloco ingest`
does). Three passes over the same chunks, alternated ``--repeat`` times, median seconds each:

- ``compress``: the compressor as ingestion calls it (length-sorted batches of compress_batch_size,
  each chunk followed by its kappa summary tokens, through the compressor's merged-LoRA copy of the
  decoder's body, projected to summary vectors);
- ``raw body``: the decoder's transformer body (no LM head) over the same chunks, in the same
  batches, without summary tokens: the strictest baseline (the compressor needs no logits);
- ``raw forward``: the decoder's full forward (body + LM head over the 49k-token vocabulary), as a
  plain prefill runs it.

Tokens/s counts the chunks' tokens only (summary tokens are the compressor's overhead).
Run it alone on the machine. Usage:
  .venv/bin/python -m bench.compress_throughput --pdf FILE [--chunks 96] [--repeat 3] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def raw_pass(decoder, chunks: list[list[int]], size: int, *, head: bool) -> None:
    """The decoder over the chunks in the compressor's batches (left-padded, masked): body only, or
    body + LM head."""
    import torch

    from model.compressor import length_batches

    pad = decoder.tokenizer.pad_token_id or 0
    with decoder.session(None):  # inference mode
        model = decoder.base_model
        body = model.get_decoder()
        for idx in length_batches(chunks, size):
            batch = [chunks[i] for i in idx]
            longest = max(len(ids) for ids in batch)
            ids = torch.tensor([[pad] * (longest - len(b)) + b for b in batch], device=decoder.device)  # (B, longest)
            mask = torch.tensor([[0] * (longest - len(b)) + [1] * len(b) for b in batch], device=decoder.device)
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            if head:
                model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=False)  # logits (B, longest, vocab)
            else:
                body(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=False)  # (B, longest, d)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pdf", type=Path, required=True)
    parser.add_argument("--chunks", type=int, default=96, help="the document's first N chunks")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--home", type=Path, default=Path(".cache/compress-bench"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import torch

    from app.config import Settings
    from app.core.service import LlocoService
    from indexing.chunking import chunk_pages
    from model.errors import InvalidInputError

    service = LlocoService(Settings(home=args.home))
    try:
        service.create_collection("bench")
    except InvalidInputError:
        pass  # there from an earlier run
    deriver = service.deriver(service.collection_row("bench"))
    doc = deriver.load(args.pdf)
    chunks = [c.token_ids for c in chunk_pages(doc.pages, encode=deriver.encode, chunk_tokens=deriver.chunk_tokens,
                                               overlap=deriver.chunk_overlap)][:args.chunks]
    tokens = sum(len(c) for c in chunks)
    size = deriver.compress_batch_size
    compressor, decoder = service.compressor, service.decoder
    passes = {
        "compress": lambda: compressor.compress(chunks, batch_size=size),
        "raw body": lambda: raw_pass(decoder, chunks, size, head=False),
        "raw forward": lambda: raw_pass(decoder, chunks, size, head=True),
    }
    warm = chunks[:size]  # warm-up: first-call allocations and kernel choices
    compressor.compress(warm, batch_size=size)
    raw_pass(decoder, warm, size, head=False)
    raw_pass(decoder, warm, size, head=True)
    seconds: dict[str, list[float]] = {name: [] for name in passes}
    for _ in range(args.repeat):
        for name, run in passes.items():
            started = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - started)
    median = {name: statistics.median(values) for name, values in seconds.items()}
    rate = {name: tokens / s for name, s in median.items()}
    print(f"{args.pdf.name}: {len(chunks)} chunks, {tokens} tokens, batch {size}, kappa {compressor.kappa}, "
          f"{torch.get_num_threads()} threads, {service.settings.decoder} {decoder.dtype}, median of {args.repeat}")
    print("| pass | seconds | tokens/s | compress / this |\n|---|---|---|---|")
    for name in passes:
        ratio = "" if name == "compress" else f"{rate['compress'] / rate[name]:.2f}"
        print(f"| {name} | {median[name]:.2f} | {rate[name]:.0f} | {ratio} |")
    if args.json:
        args.json.write_text(json.dumps({"pdf": str(args.pdf), "chunks": len(chunks), "tokens": tokens, "batch": size,
                                         "threads": torch.get_num_threads(), "seconds": seconds, "median_s": median,
                                         "tokens_per_s": rate}, indent=1))


if __name__ == "__main__":
    main()
