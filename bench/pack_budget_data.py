"""Pack the data of a budgeted GPU run (python -m model.budget_train) into a folder small enough to travel.

    .venv/bin/python bench/pack_budget_data.py --out .gpu/data [--data-root ../shared/eval-data] \
        [--decoder smollm2-135m] [--max-tokens 3000000] [--examples 4000] [--heldout-pairs 256]

Runs here, where the corpus, app/ and the tokenizer are: tokenizes with the decoder's tokenizer (no
weights are loaded) the compressor's training documents (model.corpus, train split; at most
--max-tokens, whole documents drawn in a seeded order, the last one cut), held-out (A, B) pairs drawn
like `lloco train eval-compressor`'s, and the reader mix (app.training.data.reader_raw_examples): each
example's context windows cut as compress_examples cuts them and, per window, the token ids of the
expansion sentences lloco mode adds after its vectors (app.training.data.window_sentences, at the
expand_tokens / expand_share / summary_tokens / chunk_tokens defaults of app.config.Settings).
Writes pack.json + tokens.npz (model.budget_data) and refuses a folder over --max-mib.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def setting(name: str) -> Any:
    """A default of app.config.Settings (not the user's configuration: the device run has none)."""
    from app.config import Settings

    return Settings.model_fields[name].default


def cap_tokens(docs: list, max_tokens: int, seed: int) -> list:
    """Whole documents drawn in a seeded order until ``max_tokens`` (the last one cut), in corpus order."""
    order = list(range(len(docs)))
    random.Random(seed).shuffle(order)
    kept, total = {}, 0
    for i in order:
        if total >= max_tokens:
            break
        kept[i] = replace(docs[i], ids=docs[i].ids[:max_tokens - total])
        total += len(kept[i].ids)
    return [kept[i] for i in sorted(kept)]


def pack(out: Path, *, data_root: Path, tokenizer, sources: tuple[str, ...], max_tokens: int, examples: int,
         heldout_pairs: int, seed: int = 0, kappa: int, chunk_tokens: int, expand_tokens: int, expand_share: float,
         unanswerable_share: float = 0.1, reader_sources: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Write the data folder ``out``; returns its meta (with ``sizes``: bytes per file)."""
    from app.training.data import READER_SOURCES, cut_windows, reader_raw_examples, window_sentences
    from model.budget_data import Pack, ReaderExample, tokenizer_fingerprint, write_pack
    from model.corpus import HELDOUT_EVERY, iter_documents
    from model.eval_compressor import EvalSpec
    from model.segment_pairs import PairSampler, tokenize_corpus

    train = tokenize_corpus(iter_documents(sources, data_root, split="train"), tokenizer, heldout_every=HELDOUT_EVERY)
    docs = cap_tokens(train, max_tokens, seed)
    spec = EvalSpec()  # held-out pairs as eval-compressor draws them: segment lengths and seed
    pairs = []
    if heldout_pairs:
        held = tokenize_corpus(iter_documents(sources, data_root, split="heldout"), tokenizer, heldout_every=HELDOUT_EVERY)
        pairs = PairSampler(held, min_segment=spec.min_segment, max_segment=spec.max_segment, next_segment=spec.next_segment,
                            seed=spec.seed, what="held-out").pairs(0, heldout_pairs)
    reader_sources = tuple(reader_sources or READER_SOURCES)
    raw = reader_raw_examples(data_root, sources=reader_sources, n=examples, seed=seed,
                              unanswerable_share=unanswerable_share)
    windows: dict[tuple[int, ...], int] = {}
    packed = []
    for ex in raw:
        cut = cut_windows(ex, tokenizer, chunk_tokens=chunk_tokens)
        sentences = window_sentences(ex.question, cut, tokenizer, kappa=kappa, expand_tokens=expand_tokens,
                                     expand_share=expand_share)
        packed.append(ReaderExample(ex.question, ex.answer, ex.instruction, ex.source,
                                    [windows.setdefault(w, len(windows)) for w in cut], sentences))
    meta = {"vocab_size": len(tokenizer), "tokenizer": tokenizer_fingerprint(tokenizer), "kappa": kappa,
            "chunk_tokens": chunk_tokens, "expand_tokens": expand_tokens, "expand_share": expand_share,
            "data_root": str(data_root), "seed": seed,
            "corpus": {"sources": list(sources), "heldout_every": HELDOUT_EVERY, "max_tokens": max_tokens,
                       "documents": len(docs), "tokens": sum(len(d.ids) for d in docs),
                       "train_documents": len(train), "train_tokens": sum(len(d.ids) for d in train)},
            "heldout": {"pairs": len(pairs), "min_segment": spec.min_segment, "max_segment": spec.max_segment,
                        "next_segment": spec.next_segment, "seed": spec.seed},
            "reader": {"sources": list(reader_sources), "examples": len(packed), "windows": len(windows),
                       "by_source": dict(Counter(e.source for e in packed)), "unanswerable_share": unanswerable_share,
                       "sentence_tokens": sum(len(s) for e in packed for s in e.sentences)}}
    sizes = write_pack(out, Pack(meta, docs, pairs, [list(w) for w in windows], packed))
    return {**meta, "sizes": sizes}


def load_tokenizer(decoder: str, model_cache: Path):
    """The tokenizer of a registry decoder (its converted folder) or of a local Hugging Face folder."""
    from transformers import AutoTokenizer

    from model.registry import resolve_decoder

    return AutoTokenizer.from_pretrained(resolve_decoder(decoder, model_cache))


def main(argv: list[str] | None = None) -> int:
    from model.corpus import DEFAULT_SOURCES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="The data folder to write (e.g. .gpu/data).")
    parser.add_argument("--data-root", type=Path, default=Path("../shared/eval-data"))
    parser.add_argument("--decoder", default=None, help="Registry name or folder (default: the decoder setting's default).")
    parser.add_argument("--model-cache", type=Path, default=Path(os.environ.get("LLOCO_MODEL_CACHE", ".cache/models")))
    parser.add_argument("--sources", default=",".join(DEFAULT_SOURCES), help="Compressor corpus sources.")
    parser.add_argument("--max-tokens", type=int, default=3_000_000, help="Compressor training tokens at most.")
    parser.add_argument("--examples", type=int, default=4000, help="Reader examples (drawn evenly across sources).")
    parser.add_argument("--heldout-pairs", type=int, default=256, help="Held-out (A, B) pairs for the final evaluation.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-mib", type=float, default=30.0, help="Refuse a packed folder larger than this.")
    args = parser.parse_args(argv)

    from model.errors import LlocoError

    try:
        tokenizer = load_tokenizer(args.decoder or setting("decoder"), args.model_cache)
        meta = pack(args.out, data_root=args.data_root, tokenizer=tokenizer, sources=tuple(args.sources.split(",")),
                    max_tokens=args.max_tokens, examples=args.examples, heldout_pairs=args.heldout_pairs,
                    seed=args.seed, kappa=setting("summary_tokens"), chunk_tokens=setting("chunk_tokens"),
                    expand_tokens=setting("expand_tokens"), expand_share=setting("expand_share"))
    except LlocoError as exc:
        print("error: " + " ".join(str(exc).split()), file=sys.stderr)
        return 2
    total = sum(meta["sizes"].values())
    print(f"{args.out}: {meta['corpus']['tokens']:,} corpus tokens in {meta['corpus']['documents']} documents "
          f"(of {meta['corpus']['train_tokens']:,}), {meta['heldout']['pairs']} held-out pairs, "
          f"{meta['reader']['examples']} reader examples {meta['reader']['by_source']} over "
          f"{meta['reader']['windows']} windows; {total / 2**20:.1f} MiB ({meta['sizes']})")
    if total > args.max_mib * 2**20:
        print(f"error: {args.out} is {total / 2**20:.1f} MiB, over --max-mib {args.max_mib:g}: lower --max-tokens "
              "or --examples", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
