"""The product's greedy loop (model.generation) against transformers' ``generate`` with its text
streamer — what answers were generated with before session 21 — on the same prompts (the demo
questions, each mode's own prompt), alternating question by question in one run. Prints, per mode,
the median time from the prompt to the first streamed piece and to the end, their ratios, and
whether every answer is identical.

Usage: .venv/bin/python -m bench.generation_loop [--modes lloco,lloco-pure,rag]   (run it alone)
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time


def generate_with_streamer(decoder, embeds, *, max_new_tokens: int, adapter) -> tuple[str, float, float]:  # noqa: ANN001
    """(answer, seconds to the first streamed piece, seconds to the end) with ``model.generate`` and
    transformers' ``TextIteratorStreamer`` on a thread, as the product generated until session 21."""
    import torch
    from transformers import TextIteratorStreamer

    started = time.perf_counter()
    first = None
    streamer = TextIteratorStreamer(decoder.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600)
    with decoder.session(adapter) as model:
        mask = torch.ones(embeds.shape[:2], dtype=torch.long)

        def run() -> None:
            with torch.inference_mode():
                model.generate(inputs_embeds=embeds, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False,
                               streamer=streamer, pad_token_id=decoder.tokenizer.pad_token_id)

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        pieces = []
        for piece in streamer:
            if piece:
                first = first or time.perf_counter() - started
                pieces.append(piece)
        worker.join()
    return "".join(pieces), first or time.perf_counter() - started, time.perf_counter() - started


def main() -> None:
    from app.config import Settings
    from app.cli.demo import ensure_demo_collection
    from app.core.demo import demo_questions
    from app.core.service import LlocoService
    from model.generation import stream_generate

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default="lloco,lloco-pure,rag")
    args = parser.parse_args()
    service = LlocoService(Settings())
    name = ensure_demo_collection(service)
    questions = [q["question"] for q in demo_questions()]
    decoder = service.decoder
    print(f"decoder {decoder.name} ({decoder.dtype}), {len(questions)} demo questions; medians, from the prompt")
    print("| mode | prompt rows | first piece: generate + streamer | our loop | ratio | end: generate | ours | ratio "
          "| identical |")
    print("|---|---|---|---|---|---|---|---|---|")
    for mode in args.modes.split(","):
        answerer = service.answerer(name, mode)
        prompts = [answerer.prepare(q, top_k=service.settings.top_k) for q in questions]
        n = answerer.max_new_tokens
        old_first, old_end, new_first, new_end, same = [], [], [], [], 0
        for p in prompts[:1]:  # warm both paths
            generate_with_streamer(decoder, p.embeds, max_new_tokens=n, adapter=answerer.adapter)
            "".join(stream_generate(decoder, p.embeds, max_new_tokens=n, adapter=answerer.adapter))
        for p in prompts:
            text, first, end = generate_with_streamer(decoder, p.embeds, max_new_tokens=n, adapter=answerer.adapter)
            old_first.append(first)
            old_end.append(end)
            started = time.perf_counter()
            stream = stream_generate(decoder, p.embeds, max_new_tokens=n, adapter=answerer.adapter)
            pieces = []
            for piece in stream:
                if not pieces:
                    new_first.append(time.perf_counter() - started)
                pieces.append(piece)
            new_end.append(time.perf_counter() - started)
            if not pieces:
                new_first.append(new_end[-1])
            same += "".join(pieces) == text
        of, nf = statistics.median(old_first), statistics.median(new_first)
        oe, ne = statistics.median(old_end), statistics.median(new_end)
        rows = statistics.median(int(p.embeds.shape[1]) for p in prompts)
        print(f"| {mode} | {rows:.0f} | {of * 1000:.0f} ms | {nf * 1000:.0f} ms | {nf / of:.2f} | {oe * 1000:.0f} ms | "
              f"{ne * 1000:.0f} ms | {ne / oe:.2f} | {same} of {len(prompts)} |")


if __name__ == "__main__":
    main()
