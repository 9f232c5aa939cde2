"""Terminal rendering for ``lloco train``: the corpus mix, per-step losses, the evaluation table."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.console import Console

from app.cli.shared import data_table

if TYPE_CHECKING:
    from model.corpus import SourceStats
    from model.segment_pairs import PairSampler
    from model.train_compressor import TrainConfig


def print_corpus(stats: list[SourceStats], sampler: PairSampler, config: TrainConfig, console: Console) -> None:
    """Documents and tokens per source (training / held out), and what one step reads."""
    from model.corpus import EVAL_OVERLAP

    table = data_table("source", "documents", "held out", "tokens", "held-out tokens", "share of training tokens",
                  title="compressor training corpus")
    train_tokens = sum(s.tokens - s.heldout_tokens for s in stats) or 1
    for s in stats:
        share = (s.tokens - s.heldout_tokens) / train_tokens
        table.add_row(s.source, str(s.documents), str(s.heldout_documents), f"{s.tokens:,}", f"{s.heldout_tokens:,}",
                      f"{share:.1%}")
    table.add_row("all", str(sum(s.documents for s in stats)), str(sum(s.heldout_documents for s in stats)),
                  f"{sum(s.tokens for s in stats):,}", f"{sum(s.heldout_tokens for s in stats):,}", "", style="bold")
    console.print(table)
    c = config
    pair_tokens = (c.min_segment + c.max_segment) / 2 + c.next_segment
    kind = "local (mean-pooled)" if c.pooling == "mean" else "summary"
    console.print(f"pairs from {len(sampler.docs)} training documents ({sampler.tokens:,} tokens): A = {c.min_segment}-"
                  f"{c.max_segment} tokens -> {c.kappa} {kind} vectors ({c.min_segment / c.kappa:.0f}-"
                  f"{c.max_segment / c.kappa:.0f}x), B = {c.next_segment} tokens; {c.batch_size * c.grad_accum} pairs "
                  f"per step, ~{c.steps * c.batch_size * c.grad_accum * pair_tokens:,.0f} tokens over {c.steps} steps",
                  highlight=False)
    overlap = [f"{s.source} ({EVAL_OVERLAP[s.source]})" for s in stats if s.source in EVAL_OVERLAP]
    if overlap:
        console.print(f"[yellow]note:[/] these sources are also evaluation data: {', '.join(overlap)}", highlight=False)


class StepPrinter:
    """Prints one line per step (every 10th past 200 steps) with the loss and seconds per step."""

    def __init__(self, console: Console, steps: int) -> None:
        self.console, self.steps, self.last_elapsed = console, steps, None

    def __call__(self, record: dict[str, Any]) -> None:
        step = record["step"]
        per_step = record["elapsed_s"] - self.last_elapsed if self.last_elapsed is not None else record["elapsed_s"]
        self.last_elapsed = record["elapsed_s"]
        if self.steps > 200 and step % 10 and step not in (1, self.steps):
            return
        self.console.print(f"step {step}/{self.steps}  lm {record['lm']:.3f}  recon {record['recon']:.3f}  "
                           f"total {record['total']:.3f}  lr {record['lr']:.1e}  {per_step:.2f} s/step  "
                           f"{record['tokens_seen']:,} tokens  {record['elapsed_s']:.0f} s", highlight=False)


def print_eval(result: dict[str, Any], console: Console) -> None:
    """Perplexity of the next segment B under each context, and the reconstruction accuracy."""
    r = result
    table = data_table("context for B", "tokens in context", "perplexity of B",
                  title=f"compressor {r['compressor']} on {r['pairs']} held-out pairs")
    table.add_row("none", "0", f"{r['ppl_none']:.2f}")
    table.add_row(f"summary vectors S (kappa={r['kappa']})", str(r["kappa"]), f"{r['ppl_summary']:.2f}")
    table.add_row("previous segment A as text", f"{r['a_tokens_mean']:.0f} (mean)", f"{r['ppl_text']:.2f}")
    console.print(table)
    if math.isnan(r["gap_closed"]):
        console.print("gap closed by S: n/a (A as text does not help here)", highlight=False)
    else:
        console.print(f"gap closed by S: {r['gap_closed']:.1%} of the log-perplexity (loss) gap, "
                      f"{r['gap_closed_ppl']:.1%} of the perplexity gap", highlight=False)
    console.print(f"reconstruction of A (teacher forced): {r['recon_accuracy']:.1%} tokens right from S, perplexity "
                  f"{r['recon_ppl']:.2f}; without S {r['recon_accuracy_none']:.1%}, perplexity {r['recon_ppl_none']:.2f}",
                  highlight=False)
    if r["facts"]:
        console.print(f"fact probe: {r['fact_recall']:.1%} of A's {r['facts']} numbers and names reproduced from S; "
                      f"without S {r['fact_recall_none']:.1%}", highlight=False)
    else:
        console.print("fact probe: n/a (no numbers or names in the held-out segments)", highlight=False)
    console.print(f"compression {r['compression']:.1f}x, {r['b_tokens_scored']} B tokens scored, "
                  f"{r['heldout_documents']} held-out documents, {r['seconds']:.1f} s", highlight=False)


class AdapterStepPrinter:
    """One line per adapter-training step (every 10th past 200 steps)."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def __call__(self, record: dict[str, Any]) -> None:
        step, steps = record["step"], record["steps"]
        if steps > 200 and step % 10 and step not in (1, steps):
            return
        self.console.print(f"step {step}/{steps}  loss {record['loss']:.3f}  lr {record['lr']:.1e}  "
                           f"{record['answer_tokens_seen']:,} answer tokens  {record['elapsed_s']:.0f} s", highlight=False)


def teacher_printer(console: Console, *, every: int = 50) -> Callable[[int, int], None]:
    """``progress(done, total)`` for the distillation teacher's pass: a line every ``every`` examples and at
    the end, with the rate and the time left at that rate."""
    import time

    started = time.perf_counter()
    last = [0]

    def progress(done: int, total: int) -> None:
        if done - last[0] < every and done != total:
            return
        last[0] = done
        elapsed = time.perf_counter() - started
        left = elapsed / done * (total - done) if done else float("nan")
        console.print(f"teacher {done}/{total} examples  {elapsed:.0f} s  ~{left:.0f} s left", highlight=False)

    return progress
