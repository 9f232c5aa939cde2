"""Evaluate a compressor on held-out (A, B) pairs, exactly as inference uses it.

The compressor is loaded by :func:`~model.compressor.load_compressor` (so a checkpoint's LoRA is
merged, and summary vectors pass through float16 as in the summary store) and the decoder is the
served one, without any adapter. For each pair:

- perplexity of B with no context ([B]), with the summary vectors ([S ; B]) and with A as text
  ([A ; B]); all three score B's tokens 2..n, so they score the same tokens and need no start token;
- reconstruction: teacher-forced argmax accuracy (and perplexity) of A given [S ; " Repeat:"], and
  of A given [" Repeat:"] alone: teacher forcing lets the decoder guess much of A from A's own
  prefix, so the difference between the two is what S contributes;
- fact probe (:mod:`model.fact_probe`): of A's numbers and named entities, the share the same
  teacher-forced reconstruction gets right at every token, from S and without S.

``gap_closed`` = (log ppl_none - log ppl_summary) / (log ppl_none - log ppl_text): the share of the
benefit of reading A in full that the kappa summary vectors keep (0 = none, 1 = all), in loss units.
``gap_closed_ppl`` is the same share of the perplexity gap itself, (ppl_none - ppl_summary) /
(ppl_none - ppl_text): it is the larger of the two (perplexity is convex in the loss), so the log
one is the one we hold the compressor to; both are reported.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from model.compressor import META_FILE, Compressor, load_compressor
from model.corpus import DEFAULT_SOURCES, HELDOUT_EVERY, iter_documents
from model.fact_probe import count_reproduced, fact_tokens
from model.segment_pairs import (IGNORE, RECON_PROMPT, Pair, PairSampler, assemble, summary_then_next,
                                 summary_then_repeat, text_then_next, token_scores, tokenize_corpus)

if TYPE_CHECKING:
    from model.loading import Decoder

EVAL_SEED = 1234  # held-out pairs differ from any training seed's draw


@dataclass(frozen=True)
class EvalSpec:
    sources: tuple[str, ...] = DEFAULT_SOURCES
    data_root: str = "../shared/eval-data"
    pairs: int = 64
    min_segment: int = 128
    max_segment: int = 256
    next_segment: int = 128
    batch_size: int = 4
    heldout_every: int = HELDOUT_EVERY
    seed: int = EVAL_SEED


def open_compressor(source: str, decoder: Decoder, *, kappa: int) -> tuple[Compressor, dict[str, Any]]:
    """(compressor, the settings it was trained with or {}) for a checkpoint folder or 'untrained'.

    A lloco checkpoint's own kappa wins over ``kappa``.
    """
    training: dict[str, Any] = {}
    meta_file = Path(source).expanduser() / META_FILE
    if source != "untrained" and meta_file.is_file():
        meta = json.loads(meta_file.read_text())
        kappa, training = int(meta.get("kappa", kappa)), dict(meta.get("training") or {})
    return load_compressor(source, decoder, kappa=kappa), training


def spec_for(training: dict[str, Any], given: dict[str, Any]) -> EvalSpec:
    """Held-out pairs like the training pairs (sources, split, segment lengths), then ``given`` on top."""
    keys = ("sources", "data_root", "min_segment", "max_segment", "next_segment", "heldout_every")
    inherited = {k: tuple(training[k]) if k == "sources" else training[k] for k in keys if k in training}
    return replace(EvalSpec(), **{**inherited, **given})


def evaluate_compressor(decoder: Decoder, compressor: Compressor, spec: EvalSpec) -> dict[str, Any]:
    """Perplexities, gap closed and reconstruction accuracy on ``spec.pairs`` held-out pairs."""
    started = time.perf_counter()
    docs = tokenize_corpus(iter_documents(spec.sources, spec.data_root, split="heldout",
                                          heldout_every=spec.heldout_every),
                           decoder.tokenizer, heldout_every=spec.heldout_every)
    sampler = PairSampler(docs, min_segment=spec.min_segment, max_segment=spec.max_segment,
                          next_segment=spec.next_segment, seed=spec.seed, what="held-out")
    scores = score_pairs(decoder, compressor, sampler.pairs(0, spec.pairs), batch_size=spec.batch_size)
    return {**scores, "heldout_documents": len(sampler.docs), "seconds": time.perf_counter() - started}


def score_pairs(decoder: Decoder, compressor: Compressor, pairs: list[Pair], *, batch_size: int,
                stop: Callable[[], bool] | None = None) -> dict[str, Any]:
    """The figures of :func:`evaluate_compressor` on given pairs (all but ``heldout_documents`` and
    ``seconds``). ``stop`` is asked before every batch but the first: once it says yes, the pairs
    scored so far are reported (``pairs`` says how many)."""
    totals = {k: [0.0, 0, 0] for k in ("none", "summary", "text", "recon", "recon_none")}  # [nll, tokens, correct]
    facts = {k: [0, 0] for k in FACT_LAYOUTS}  # [reproduced, facts]
    per_pair: list[tuple[int, int]] = []  # (facts reproduced from S, facts) of each pair, for paired comparisons
    done = 0
    for start in range(0, len(pairs), batch_size):
        if start and stop is not None and stop():
            break
        scores, found = _score_batch(decoder, compressor, pairs[start:start + batch_size])
        for key, values in scores.items():
            totals[key] = [a + b for a, b in zip(totals[key], values, strict=True)]
        for key, rows in found.items():
            facts[key] = [facts[key][0] + sum(h for h, _ in rows), facts[key][1] + sum(n for _, n in rows)]
        per_pair += found["recon"]
        done = min(len(pairs), start + batch_size)
    ppl = {k: math.exp(nll / n) for k, (nll, n, _) in totals.items()}
    gap = math.log(ppl["none"]) - math.log(ppl["text"])
    mean_a = sum(len(p.a) for p in pairs[:done]) / done
    return {
        "compressor": compressor.ident, "trained": compressor.trained, "kappa": compressor.kappa,
        "pairs": done, "a_tokens_mean": mean_a,
        "compression": mean_a / compressor.kappa, "b_tokens_scored": totals["none"][1],
        "ppl_none": ppl["none"], "ppl_summary": ppl["summary"], "ppl_text": ppl["text"],
        "gap_closed": (math.log(ppl["none"]) - math.log(ppl["summary"])) / gap if gap > 0 else float("nan"),
        "gap_closed_ppl": (ppl["none"] - ppl["summary"]) / (ppl["none"] - ppl["text"]) if gap > 0 else float("nan"),
        "recon_accuracy": totals["recon"][2] / totals["recon"][1], "recon_ppl": ppl["recon"],
        "recon_accuracy_none": totals["recon_none"][2] / totals["recon_none"][1], "recon_ppl_none": ppl["recon_none"],
        "facts": facts["recon"][1],
        "fact_recall": facts["recon"][0] / facts["recon"][1] if facts["recon"][1] else float("nan"),
        "fact_recall_none": facts["recon_none"][0] / facts["recon_none"][1] if facts["recon_none"][1] else float("nan"),
        "fact_hits_per_pair": [h for h, _ in per_pair], "facts_per_pair": [n for _, n in per_pair],
    }


FACT_LAYOUTS = ("recon", "recon_none")  # the fact probe reads the reconstructions, with and without S


def _score_batch(decoder: Decoder, compressor: Compressor,
                 pairs: list) -> tuple[dict[str, tuple[float, int, int]], dict[str, list[tuple[int, int]]]]:
    """(summed NLL, tokens, argmax-correct) per condition for one batch of pairs, and per
    reconstruction condition each pair's (facts reproduced, facts)."""
    vectors = compressor.compress([p.a for p in pairs], batch_size=len(pairs))  # each (kappa, d) float16
    summaries = [v.to(decoder.device, decoder.dtype) for v in vectors]
    prompt, embed = decoder.encode(RECON_PROMPT), decoder.embed_ids
    out, found = {}, {}
    facts = [fact_tokens(decoder.tokenizer, list(p.a)) for p in pairs]  # per pair, its facts' token positions
    with decoder.session(None) as model:
        layouts = {
            "none": ([text_then_next([], p.b, embed) for p in pairs], True),
            "summary": ([summary_then_next(s, p.b, embed) for s, p in zip(summaries, pairs, strict=True)], True),
            "text": ([text_then_next(p.a, p.b, embed) for p in pairs], True),
            "recon": ([summary_then_repeat(s, prompt, p.a, embed) for s, p in zip(summaries, pairs, strict=True)], False),
            "recon_none": ([text_then_next(prompt, p.a, embed) for p in pairs], False),
        }
        for key, (rows, skip_first) in layouts.items():
            embeds, mask, labels = assemble(rows, dtype=decoder.dtype)  # (B, L, d), (B, L), (B, L)
            logits = model(inputs_embeds=embeds, attention_mask=mask, use_cache=False).logits  # (B, L, V)
            nll, n, correct = token_scores(logits, labels, skip_first=skip_first)
            out[key] = (float(nll), n, correct)
            if key in FACT_LAYOUTS:
                found[key] = _facts(facts, logits, labels)
    return out, found


def _facts(facts: list[list[list[int]]], logits, labels) -> list[tuple[int, int]]:
    """Per pair, (facts reproduced, facts) of its A (``facts``: per pair, each fact's token positions
    in A) given the reconstruction's logits (B, L, V) and labels (B, L), whose labelled positions are A's tokens."""
    right = logits[:, :-1].argmax(-1) == labels[:, 1:]  # (B, L-1): position t predicts label t+1
    scored = labels[:, 1:] != IGNORE  # (B, L-1)
    return [(count_reproduced(row_facts, right[row][scored[row]].tolist()), len(row_facts))
            for row, row_facts in enumerate(facts)]
