"""``lloco train``: the summary-token compressor and the LoRA adapters (issue: learn offline)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.cli_shared import _csv, out, service

train_app = typer.Typer(no_args_is_help=True, help="Train lloco's own models: the compressor and the adapters.")


@train_app.command("compressor")
def train_compressor(
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder: the checkpoint, log.jsonl, loss.png.")],
    sources: Annotated[str | None, typer.Option(help="Comma-separated: qmsum, squality, narrativeqa, squad, essays, financebench (default: all but financebench).")] = None,
    data_root: Annotated[Path | None, typer.Option(help="The eval-data folder (default: ../shared/eval-data).")] = None,
    steps: Annotated[int | None, typer.Option(help="Optimizer steps (default 1000).")] = None,
    kappa: Annotated[int | None, typer.Option(help="Summary vectors per segment (default: the summary_tokens setting).")] = None,
    min_segment: Annotated[int | None, typer.Option(help="Shortest segment A to compress, in tokens (default 128).")] = None,
    max_segment: Annotated[int | None, typer.Option(help="Longest segment A, in tokens (default 256).")] = None,
    next_segment: Annotated[int | None, typer.Option(help="Length of the next segment B, in tokens (default 128).")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Pairs per micro-batch (default 4).")] = None,
    grad_accum: Annotated[int | None, typer.Option(help="Micro-batches per optimizer step (default 1).")] = None,
    lr: Annotated[float | None, typer.Option(help="LoRA learning rate (default 2e-4).")] = None,
    summary_lr: Annotated[float | None, typer.Option(help="Summary-embedding learning rate (default 1e-3).")] = None,
    recon_weight: Annotated[float | None, typer.Option(help="Weight of the reconstruction loss (default 1).")] = None,
    fact_weight: Annotated[float | None, typer.Option(help="Extra weight of number and named-entity tokens in the reconstruction loss (default 0: a plain mean; 4 = such tokens count 5x).")] = None,
    init_from: Annotated[Path | None, typer.Option(help="Start from this compressor checkpoint's weights (e.g. the shipped one) with a fresh optimizer and schedule.")] = None,
    projection: Annotated[bool | None, typer.Option("--projection/--no-projection", help="Learn an output projection of the summary vectors (default on).")] = None,
    projection_lr: Annotated[float | None, typer.Option(help="Projection learning rate (default 5e-4).")] = None,
    save_every: Annotated[int | None, typer.Option(help="Checkpoint every N steps (default 100).")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the LoRA initialisation and the data order (default 0).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the checkpoint in --out, same data order (with a larger --steps: "
                                              "extend it, the cosine schedule stretched to the new end).")] = False,
) -> None:
    """Train the summary-token compressor (summary embeddings + LoRA) on next-segment LM and reconstruction."""
    from app.train_console import StepPrinter, print_corpus
    from model.train_compressor import CompressorTrainer, prepare_corpus, resolve_config

    svc = service()
    given = {"sources": _csv(sources),
             "data_root": str(data_root) if data_root else None, "steps": steps, "kappa": kappa,
             "min_segment": min_segment, "max_segment": max_segment, "next_segment": next_segment,
             "batch_size": batch_size, "grad_accum": grad_accum, "lr": lr, "summary_lr": summary_lr,
             "recon_weight": recon_weight, "fact_weight": fact_weight,
             "init_from": str(init_from) if init_from else None, "projection": projection, "projection_lr": projection_lr,
             "save_every": save_every, "seed": seed}
    given = {k: v for k, v in given.items() if v is not None}
    if not resume:
        given.setdefault("kappa", svc.settings.summary_tokens)
    config = resolve_config(out_dir, given, resume=resume)
    decoder = svc.decoder
    sampler, stats = prepare_corpus(decoder, config)
    print_corpus(stats, sampler, config, out)
    trainer = CompressorTrainer.create(decoder, config, out_dir, resume=resume, sampler=sampler)
    if resume:
        out.print(f"resuming at step {trainer.step} of {config.steps}")
    trainer.run(on_step=StepPrinter(out, config.steps))
    out.print(f"checkpoint: {out_dir} (step {trainer.step}); use it with --compressor {out_dir} or "
              f"`lloco train eval-compressor --checkpoint {out_dir}`", highlight=False)


@train_app.command("eval-compressor")
def train_eval_compressor(
    checkpoint: Annotated[str, typer.Option(help="A compressor checkpoint folder, or 'untrained' (the baseline).")] = "untrained",
    pairs: Annotated[int, typer.Option(min=1, help="Held-out (A, B) pairs to score.")] = 64,
    sources: Annotated[str | None, typer.Option(help="Comma-separated sources (default: the checkpoint's training sources).")] = None,
    data_root: Annotated[Path | None, typer.Option(help="The eval-data folder (default: the checkpoint's, else ../shared/eval-data).")] = None,
    min_segment: Annotated[int | None, typer.Option(help="Shortest A (default: as trained).")] = None,
    max_segment: Annotated[int | None, typer.Option(help="Longest A (default: as trained).")] = None,
    next_segment: Annotated[int | None, typer.Option(help="Length of B (default: as trained).")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Pairs per forward pass (default 4).")] = None,
) -> None:
    """Perplexity of the next segment with no context, summary vectors or full text; reconstruction accuracy."""
    from app.train_console import print_eval
    from model.eval_compressor import evaluate_compressor, open_compressor, spec_for

    svc = service()
    compressor, training = open_compressor(checkpoint, svc.decoder, kappa=svc.settings.summary_tokens)
    given = {"sources": _csv(sources),
             "data_root": str(data_root) if data_root else None, "pairs": pairs, "min_segment": min_segment,
             "max_segment": max_segment, "next_segment": next_segment, "batch_size": batch_size}
    spec = spec_for(training, {k: v for k, v in given.items() if v is not None})
    print_eval(evaluate_compressor(svc.decoder, compressor, spec), out)


@train_app.command("adapter")
def train_adapter(
    out_dir: Annotated[Path | None, typer.Option("--out", help="Output folder (the adapter); default for --collection: inside the collection's folder.")] = None,
    collection: Annotated[str | None, typer.Option(help="Train this collection's own adapter (needs --qa and/or --synthetic) and attach it.")] = None,
    qa: Annotated[Path | None, typer.Option(help="A jsonl file of {\"question\": ..., \"answer\": ...} about the collection.")] = None,
    synthetic: Annotated[int, typer.Option(min=0, max=100_000, help="Cloze questions to generate from the collection's chunks.")] = 0,
    sources: Annotated[str | None, typer.Option(help="Reader adapter: comma-separated squad, squad-mc, narrativeqa (default: all).")] = None,
    data_root: Annotated[Path, typer.Option(help="Reader adapter: the eval-data folder.")] = Path("../shared/eval-data"),
    examples: Annotated[int, typer.Option(min=8, help="Reader adapter: QA examples drawn evenly from the sources.")] = 1200,
    unanswerable_share: Annotated[float, typer.Option(min=0.0, max=1.0, help="Reader adapter: most SQuAD examples that may be 'unanswerable' (1 = SQuAD 2.0's natural ~52%).")] = 0.1,
    expand_tokens: Annotated[int | None, typer.Option(min=0, max=2048, help="Reader adapter: train on lloco's expanded prompts, with this sentence budget (default: the expand_tokens setting; 0 = vectors only).")] = None,
    steps: Annotated[int, typer.Option(min=1, help="Optimizer steps.")] = 150,
    batch_size: Annotated[int, typer.Option(min=1, help="Examples per step.")] = 8,
    lr: Annotated[float, typer.Option(min=0.0, help="LoRA learning rate.")] = 3e-4,
    save_every: Annotated[int, typer.Option(min=1, help="Checkpoint every N steps.")] = 25,
    seed: Annotated[int, typer.Option(help="Seed of the example draw, the LoRA initialisation and the order.")] = 0,
    distill_weight: Annotated[float, typer.Option(min=0.0, help="Reader adapter: weight of the KL term to plain RAG's answer distributions (the base decoder reading the same contexts as text; 0 = off).")] = 0.0,
    distill_teacher: Annotated[Path | None, typer.Option(help="Reader adapter: the distillation teacher reads the text with this adapter (e.g. the shipped reader: rag+reader) instead of the bare base decoder.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out on its own examples.")] = False,
) -> None:
    """LoRA on the decoder, trained to answer from summary vectors: the reader adapter, or a collection's."""
    from app.adapter_training import train_reader_adapter
    from app.train_console import AdapterStepPrinter, teacher_printer
    from model.errors import InvalidInputError
    from model.train_adapter import AdapterConfig

    svc = service()
    config = AdapterConfig(steps=steps, batch_size=batch_size, lr=lr, save_every=save_every, seed=seed,
                           distill_weight=distill_weight, distill_teacher=str(distill_teacher or ""))
    printer = AdapterStepPrinter(out)
    if collection and not resume:
        result = svc.train_adapter(collection, qa_file=qa, synthetic=synthetic, steps=steps, batch_size=batch_size,
                                   lr=lr, seed=seed, save_every=save_every, out=out_dir, progress=printer)
        out.print(f"adapter for {collection!r}: {result.path} ({result.examples} examples, loss {result.first_loss:.3f} -> "
                  f"{result.last_loss:.3f}, {result.seconds:.0f} s); attached, used for its lloco-mode questions",
                  highlight=False)
        return
    if out_dir is None:
        raise InvalidInputError("--out is required for the reader adapter and for --resume")
    result = train_reader_adapter(svc, config, out_dir, data_root=data_root, sources=tuple(_csv(sources) or ()) or None,
                                  examples=examples, unanswerable_share=unanswerable_share, expand_tokens=expand_tokens,
                                  resume=resume, progress=printer, notice=lambda m: out.print(m, highlight=False),
                                  teacher_progress=teacher_printer(out))
    out.print(f"adapter: {result.path} (step {result.steps}, {result.examples} examples {result.examples_by_source}, "
              f"{result.seconds:.0f} s); use it with --set adapter={result.path}", highlight=False)
