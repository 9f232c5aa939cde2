"""Answer engines side by side (issue 14, items 1-2): the demo questions (or a collection's and a
questions file's) in each mode, answered by transformers (the loaded dtype) and by llama.cpp at each
GGUF type, the engines alternating question by question in one run. Prints, per mode and engine,
the median time to first token and per answer, decode tokens/s, the ratio to transformers, how many
answers are identical to transformers', and lloco's time to first token over rag's and full's.

Usage: .venv/bin/python -m bench.answer_engines [--types f32,q8_0] [--modes lloco,lloco-pure,rag,full]
       [--repeat 1] [--json OUT]       (run it alone: timings on a busy CPU mean nothing)
"""

from __future__ import annotations

import argparse
import json
import statistics


def main() -> None:
    from app.config import Settings
    from app.cli.demo import ensure_demo_collection
    from app.core.demo import demo_questions
    from app.core.service import LlocoService
    from model.llamacpp import LlamaCppEngine

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--types", default="f32,q8_0", help="llama.cpp GGUF types to run beside transformers")
    parser.add_argument("--modes", default="lloco,lloco-pure,rag,full")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--json", default=None, help="write every answer and timing here")
    args = parser.parse_args()
    service = LlocoService(Settings())
    name = ensure_demo_collection(service)
    questions = [q["question"] for q in demo_questions()]
    decoder = service.decoder
    cache = service.settings.resolved_model_cache / "gguf"
    engines = {"transformers": None} | {f"llama-cpp-{t}": LlamaCppEngine(cache_dir=cache, gguf_type=t)
                                        for t in args.types.split(",") if t}
    rows: dict[str, dict[str, list[dict]]] = {}
    for mode in args.modes.split(","):
        rows[mode] = {e: [] for e in engines}
        for engine in engines.values():  # warm: GGUF written and loaded, prefix caches filled
            decoder.engine = engine
            service.ask(name, questions[0], mode=mode).read()
        for _ in range(args.repeat):
            for question in questions:
                for label, engine in engines.items():
                    decoder.engine = engine
                    a = service.ask(name, question, mode=mode).read()
                    rows[mode][label].append({"question": question, "text": a.text, "ttft_s": a.ttft_s,
                                              "total_s": a.total_s, "generated": a.generated_tokens,
                                              "prompt_tokens": a.prompt_tokens})
    decoder.engine = None
    print(f"decoder {decoder.name} ({decoder.dtype}), {len(questions)} questions x {args.repeat}, "
          f"{service.settings.top_k} chunks; medians")
    print("| mode | engine | prompt tokens | TTFT ms | per answer ms | decode tok/s | TTFT / transformers | "
          "answer / transformers | identical answers |")
    print("|---|---|---|---|---|---|---|---|---|")
    ttft: dict[tuple[str, str], float] = {}
    for mode, by_engine in rows.items():
        base = by_engine["transformers"]
        for label, got in by_engine.items():
            t = statistics.median(r["ttft_s"] for r in got)
            total = statistics.median(r["total_s"] for r in got)
            decode = statistics.median((r["generated"] - 1) / (r["total_s"] - r["ttft_s"]) for r in got
                                       if r["generated"] > 1 and r["total_s"] > r["ttft_s"])
            same = sum(r["text"] == b["text"] for r, b in zip(got, base, strict=True))
            ttft[(mode, label)] = t
            base_t = statistics.median(r["ttft_s"] for r in base)
            base_total = statistics.median(r["total_s"] for r in base)
            print(f"| {mode} | {label} | {statistics.median(r['prompt_tokens'] for r in got):.0f} | {t * 1000:.0f} | "
                  f"{total * 1000:.0f} | {decode:.1f} | {t / base_t:.2f} | {total / base_total:.2f} | "
                  f"{same} of {len(got)} |")
    for label in engines:
        for mode in ("lloco", "lloco-pure"):
            parts = [f"/ {other} {ttft[(mode, label)] / ttft[(other, label)]:.3f}" for other in ("rag", "full")
                     if (mode, label) in ttft and (other, label) in ttft]
            if parts:
                print(f"{label}: {mode} time to first token " + " ".join(parts))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
