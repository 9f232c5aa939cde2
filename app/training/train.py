"""Train adapters from the service layer: the reader adapter (training-side QA sets) and a
collection's own adapter (its QA file or synthetic questions), attached to the collection."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.training.data import READER_SOURCES, collection_examples, compress_examples, reader_raw_examples
from model.train_adapter import COLLECTION_STEPS, AdapterConfig

if TYPE_CHECKING:
    from app.core.service import LlocoService

StepCallback = Callable[[dict[str, Any]], None]  # receives each step's record, with "steps" (the total) added


@dataclass(frozen=True)
class AdapterTrainResult:
    path: Path
    steps: int
    examples: int
    examples_by_source: dict[str, int]
    first_loss: float
    last_loss: float
    seconds: float


def run_training(service: LlocoService, config: AdapterConfig, out: Path, items: list | None, *, resume: bool = False,
                 meta: dict[str, Any] | None = None, init_from: str | None = None,
                 progress: StepCallback | None = None,
                 teacher_progress: Callable[[int, int], None] | None = None) -> AdapterTrainResult:
    """Train (or resume) one adapter in ``out`` and summarise the run. ``teacher_progress(done, total)``:
    the distillation teacher's pass over the examples, before the first step."""
    from model.train_adapter import AdapterTrainer

    started = time.perf_counter()
    trainer = AdapterTrainer.create(service.decoder, config, out, items, resume=resume, meta=meta, init_from=init_from,
                                    teacher_progress=teacher_progress)
    losses: list[float] = []

    def on_step(record: dict[str, Any]) -> None:
        losses.append(record["loss"])
        if progress:
            progress({**record, "steps": trainer.config.steps})

    trainer.run(on_step=on_step)
    return AdapterTrainResult(Path(out), trainer.step, len(trainer.items), trainer.examples_by_source,
                              losses[0] if losses else float("nan"), losses[-1] if losses else float("nan"),
                              time.perf_counter() - started)


def train_collection_adapter(service: LlocoService, name: str, *, qa_file: Path | None = None, synthetic: int = 0,
                             steps: int = COLLECTION_STEPS, batch_size: int = AdapterConfig.batch_size,
                             lr: float = AdapterConfig.lr, seed: int = AdapterConfig.seed,
                             save_every: int | None = None, out: Path | None = None,
                             progress: StepCallback | None = None) -> AdapterTrainResult:
    """Train a LoRA for collection ``name`` on its QA file and/or ``synthetic`` cloze questions, then attach it.

    Starts from the collection's current adapter (or the shipped reader adapter) when there is one,
    so the collection adapter keeps the general skill of reading summary vectors. ``progress`` gets
    each step's record (step, steps, loss); ``save_every`` defaults to one checkpoint at the end.
    """
    qa_file = None if qa_file is None else service.settings.refuse_state(qa_file, "a QA file", uploads=True)
    out = None if out is None else service.settings.refuse_state(out, "an adapter's output folder")
    config = AdapterConfig(steps=steps, batch_size=batch_size, lr=lr, seed=seed, save_every=save_every or max(1, steps))
    row = service.collection_row(name)
    items = collection_examples(service, name, qa_file=qa_file, synthetic=synthetic, seed=seed)
    out = out or service.settings.collection_dir(row.id) / "adapters" / time.strftime("%Y%m%d-%H%M%S")
    init_from = service.adapter_for(row)
    meta = {"collection": name, "qa_file": str(qa_file) if qa_file else None, "synthetic": synthetic,
            "init_from": init_from, "compressor": service.compressor.ident}
    result = run_training(service, config, out, items, meta=meta, init_from=init_from, progress=progress)
    service.set_adapter(name, result.path)
    return result


def train_reader_adapter(service: LlocoService, config: AdapterConfig, out: Path, *, data_root: Path,
                         sources: tuple[str, ...] | None = None, examples: int = 1200, unanswerable_share: float = 0.1,
                         expand_tokens: int | None = None, resume: bool = False,
                         progress: StepCallback | None = None,
                         notice: Callable[[str], None] | None = None,
                         teacher_progress: Callable[[int, int], None] | None = None) -> AdapterTrainResult:
    """Train (or ``resume``) the generic reader adapter on the training-side QA mix, each example's
    contexts compressed by the service's compressor and laid out as lloco mode's prompt (vectors, plus
    the question's sentences when ``expand_tokens`` > 0; default: the expand_tokens setting).
    ``config.distill_weight`` > 0 adds the RAG-mode teacher's KL term (see :mod:`model.train_adapter`)."""
    settings = service.settings
    reader_sources = tuple(sources or READER_SOURCES)
    expand = settings.expand_tokens if expand_tokens is None else expand_tokens
    items = None
    if not resume:
        raw = reader_raw_examples(data_root, sources=reader_sources, n=examples, seed=config.seed,
                                  unanswerable_share=unanswerable_share)
        if notice:
            notice(f"compressing the contexts of {len(raw)} examples with {service.compressor.ident} ...")
        items = compress_examples(raw, service.decoder, service.compressor, chunk_tokens=settings.chunk_tokens,
                                  expand_tokens=expand, expand_share=settings.expand_share)
        if notice and config.distill_weight > 0:
            notice(f"the RAG-mode teacher reads the {len(items)} examples' text (top {config.distill_top_k} "
                   "log-probabilities per answer token) ...")
    meta = {"kind": "reader", "compressor": service.compressor.ident, "sources": list(reader_sources),
            "data_root": str(data_root), "unanswerable_share": unanswerable_share,
            "expand_tokens": expand, "expand_share": settings.expand_share}
    return run_training(service, config, out, items, resume=resume, meta=meta, progress=progress,
                        teacher_progress=teacher_progress)

