"""``lloco train``: the summary-token compressor and the LoRA adapters (issue: learn offline)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.cli.shared import _csv, out, service
from model.compressor import Pooling
from model.train_adapter import COLLECTION_STEPS, AdapterConfig
from model.train_compressor import TrainConfig
from model.train_state import option_help

train_app = typer.Typer(no_args_is_help=True, help="Train lloco's own models: the compressor and the adapters.")


def _c(name: str) -> str:
    return option_help(TrainConfig, name)


def _a(name: str) -> str:  # the option's default is the field's, and typer shows it
    return option_help(AdapterConfig, name, default=False)


@train_app.command("compressor")
def train_compressor(
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder: the checkpoint, log.jsonl, loss.png.")],
    sources: Annotated[str | None, typer.Option(help="Comma-separated. " + _c("sources"))] = None,
    data_root: Annotated[Path | None, typer.Option(help=_c("data_root"))] = None,
    steps: Annotated[int | None, typer.Option(help=_c("steps"))] = None,
    kappa: Annotated[int | None, typer.Option(help=_c("kappa"))] = None,
    pooling: Annotated[Pooling | None, typer.Option(help=_c("pooling"))] = None,
    min_segment: Annotated[int | None, typer.Option(help=_c("min_segment"))] = None,
    max_segment: Annotated[int | None, typer.Option(help=_c("max_segment"))] = None,
    next_segment: Annotated[int | None, typer.Option(help=_c("next_segment"))] = None,
    batch_size: Annotated[int | None, typer.Option(help=_c("batch_size"))] = None,
    grad_accum: Annotated[int | None, typer.Option(help=_c("grad_accum"))] = None,
    lr: Annotated[float | None, typer.Option(help=_c("lr"))] = None,
    summary_lr: Annotated[float | None, typer.Option(help=_c("summary_lr"))] = None,
    recon_weight: Annotated[float | None, typer.Option(help=_c("recon_weight"))] = None,
    fact_weight: Annotated[float | None, typer.Option(help=_c("fact_weight"))] = None,
    init_from: Annotated[Path | None, typer.Option(help=_c("init_from"))] = None,
    projection: Annotated[bool | None, typer.Option("--projection/--no-projection", help=_c("projection"))] = None,
    projection_lr: Annotated[float | None, typer.Option(help=_c("projection_lr"))] = None,
    save_every: Annotated[int | None, typer.Option(help=_c("save_every"))] = None,
    seed: Annotated[int | None, typer.Option(help=_c("seed"))] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the checkpoint in --out, same data order (with a larger --steps: "
                                              "extend it, the cosine schedule stretched to the new end).")] = False,
) -> None:
    """Train the summary-token compressor (summary embeddings + LoRA) on next-segment LM and reconstruction."""
    from app.cli.train_console import StepPrinter, print_corpus
    from model.train_compressor import CompressorTrainer, prepare_corpus, resolve_config

    svc = service()
    given = {"sources": _csv(sources),
             "data_root": str(data_root) if data_root else None, "steps": steps, "kappa": kappa, "pooling": pooling,
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
    from app.cli.train_console import print_eval
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
    steps: Annotated[int | None, typer.Option(min=1, help=f"{_a('steps')} (default {AdapterConfig.steps} for the reader, {COLLECTION_STEPS} for a collection's)")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help=_a("batch_size"))] = AdapterConfig.batch_size,
    lr: Annotated[float, typer.Option(min=0.0, help=_a("lr"))] = AdapterConfig.lr,
    save_every: Annotated[int, typer.Option(min=1, help=_a("save_every"))] = AdapterConfig.save_every,
    seed: Annotated[int, typer.Option(help=_a("seed"))] = AdapterConfig.seed,
    distill_weight: Annotated[float, typer.Option(min=0.0, help=_a("distill_weight"))] = AdapterConfig.distill_weight,
    distill_teacher: Annotated[Path | None, typer.Option(help=_a("distill_teacher"))] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out on its own examples.")] = False,
) -> None:
    """LoRA on the decoder, trained to answer from summary vectors: the reader adapter, or a collection's."""
    from app.cli.train_console import AdapterStepPrinter, teacher_printer
    from app.training.train import train_collection_adapter, train_reader_adapter
    from model.errors import InvalidInputError

    svc = service()
    steps = steps or (COLLECTION_STEPS if collection and not resume else AdapterConfig.steps)
    config = AdapterConfig(steps=steps, batch_size=batch_size, lr=lr, save_every=save_every, seed=seed,
                           distill_weight=distill_weight, distill_teacher=str(distill_teacher or ""))
    printer = AdapterStepPrinter(out)
    if collection and not resume:
        result = train_collection_adapter(svc, collection, qa_file=qa, synthetic=synthetic, steps=steps, batch_size=batch_size,
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
