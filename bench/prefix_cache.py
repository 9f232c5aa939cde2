"""Prefix KV cache benchmark (issue 14): the demo questions in lloco and rag mode, with the prompt's
fixed start prefilled once (prefix_cache on) and without (off), alternating question by question in
one run; prints the median time to first token of each and their ratio, and whether every answer is
identical.

Usage: .venv/bin/python -m bench.prefix_cache [--repeat 3]   (run it alone: timings on a busy CPU mean nothing)
"""

from __future__ import annotations

import argparse
import statistics


def main() -> None:
    from app.config import Settings
    from app.cli.demo import ensure_demo_collection
    from app.core.demo import demo_questions
    from app.core.service import LlocoService

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    service = LlocoService(Settings())
    name = ensure_demo_collection(service)
    questions = [q["question"] for q in demo_questions()]
    for mode in ("lloco", "rag"):
        ttft: dict[bool, list[float]] = {True: [], False: []}
        texts: dict[bool, list[str]] = {True: [], False: []}
        service.settings.prefix_cache = True
        service.ask(name, questions[0], mode=mode).read()  # the cache is filled once, before timing
        for _ in range(args.repeat):
            for question in questions:
                for cached in (False, True):
                    service.settings.prefix_cache = cached
                    answer = service.ask(name, question, mode=mode).read()
                    ttft[cached].append(answer.ttft_s)
                    texts[cached].append(answer.text)
        on, off = statistics.median(ttft[True]), statistics.median(ttft[False])
        same = texts[True] == texts[False]
        print(f"{mode}: time to first token {on * 1000:.0f} ms with the prefix cache, {off * 1000:.0f} ms without "
              f"(ratio {on / off:.2f}); {len(texts[True])} answers, identical: {same}")


if __name__ == "__main__":
    main()
