"""Train the compressor, then the reader LoRA on it, within a fixed wall-clock budget (a GPU lease).

    python -m model.budget_train train --decoder DIR --data DIR --out DIR --minutes 10

Needs only torch, transformers, peft, safetensors (and numpy) and ``model/``: the data folder
(:mod:`model.budget_data`, packed by ``bench/pack_budget_data.py``) holds everything as token ids.

Time: the budget counts from the start of :func:`main` (loading included, ``time.monotonic``). The
compressor phase ends at ``compressor_share`` of it; the reader phase (compressing its examples'
windows with the fresh compressor, then training) ends before the budget does, leaving a reserve for
a held-out evaluation of the compressor (gap closed, :func:`model.eval_compressor.score_pairs`) and a
small slack. Neither phase knows its step count in advance: each runs MEASURED steps (the first
warms up, the others are timed), sets the schedule's total steps so the cosine ends at the phase's
end (re-planned once, a quarter of the way in), checkpoints, and stops before a step plus a save
would pass the end. A budget where fewer than MIN_COMPRESSOR_STEPS / MIN_READER_STEPS steps fit is
refused with the minutes it would need.

Output (``--out``), at most 8 files of at most 16 MiB each, checked at every checkpoint:
``compressor/`` (a checkpoint :func:`model.compressor.load_compressor` reads), ``reader/`` (a peft
adapter folder + ``lloco_adapter.json``) and ``log.jsonl`` (one line per step of both phases, with
phase, step, loss, lr and elapsed seconds, then a "summary" line). The trainers' own folders (resume
state, examples) go to ``--scratch`` (default: a temporary folder, removed at the end).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from model import train_state as ts
from model.budget_data import check_outputs, publish, read_pack, tokenizer_fingerprint
from model.errors import InvalidInputError, LlocoError, NotFoundError

if TYPE_CHECKING:
    from model.budget_data import Pack
    from model.compressor import Compressor
    from model.loading import Decoder

MIN_MINUTES = 2.0
MIN_COMPRESSOR_STEPS = 20
MIN_READER_STEPS = 10
MEASURED = 3  # steps run before the plan: the first warms up (allocation, kernels), the next are timed
PROVISIONAL_STEPS = 1000  # the schedule's length until the first steps are timed
SAVE_EVERY_S = 60.0
EVAL_SHARE = 0.05  # the held-out evaluation gets at most this share of the budget
COMPRESSOR_LR = {"lr": 4e-4, "projection_lr": 2e-4, "summary_lr": 1e-3}  # the shipped compressor's
BATCHES = {"cuda": (32, 16), "cpu": (4, 8)}  # (compressor pairs, reader examples) per step
COMPRESSOR_FILES = ("compressor.json", "summary_embeddings.safetensors", "lora/adapter_config.json",
                    "lora/adapter_model.safetensors")
READER_FILES = ("adapter_config.json", "adapter_model.safetensors", "lloco_adapter.json")


class BudgetTooSmallError(InvalidInputError):
    """The budget cannot fit enough steps to be worth the run."""


@dataclass
class Budget:
    """``seconds`` of wall clock, counted from ``start`` on ``clock`` (injectable for tests)."""

    seconds: float
    clock: Callable[[], float] = time.monotonic
    start: float | None = None

    def __post_init__(self) -> None:
        if self.start is None:
            self.start = self.clock()

    def now(self) -> float:
        """Seconds of the budget used so far."""
        return self.clock() - self.start

    @property
    def slack(self) -> float:
        """Left unused at the end, for the summary and the output check."""
        return max(1.0, 0.01 * self.seconds)


def minutes_needed(seconds: float, share: float, reserve: float = 0.0) -> int:
    """Whole minutes of budget that give a phase with ``share`` of the budget ``seconds``."""
    return max(math.ceil(MIN_MINUTES), math.ceil((seconds / share + reserve) / 60))


class BudgetRun:
    """One budgeted run: the decoder, the packed data, the clock and the output folder."""

    def __init__(self, decoder: Decoder, pack: Pack, *, out: Path, scratch: Path, budget: Budget,
                 compressor_share: float, seed: int, batches: tuple[int, int], data: str,
                 save_every_s: float = SAVE_EVERY_S) -> None:
        self.decoder, self.pack, self.out, self.scratch, self.budget = decoder, pack, out, scratch, budget
        self.share, self.seed, self.batches, self.data = compressor_share, seed, batches, data
        self.save_every_s = save_every_s

    @property
    def kept(self) -> str:
        return f" (the compressor checkpoint in {self.out / 'compressor'} is kept)"

    def log(self, phase: str, record: dict[str, Any]) -> None:
        keep = {k: record[k] for k in ("lm", "recon", "lr", "grad_norm", "tokens_seen") if k in record}
        loss = record.get("loss", record.get("total"))  # the reader's loss, the compressor's lm + recon
        ts.append_log(self.out, {"phase": phase, "step": record["step"], "loss": loss, **keep,
                                 "elapsed": round(self.budget.now(), 3)})

    def say(self, text: str) -> None:
        print(f"[{self.budget.now():7.1f} s] {text}", flush=True)

    # ---------------------------------------------------------------------------- phases
    def train_compressor(self) -> dict[str, Any]:
        """The summary-token compressor, for ``compressor_share`` of the budget (loading included)."""
        from model.train_compressor import CompressorTrainer, TrainConfig, train_sampler

        # data_root: where the packed text came from, so `lloco train eval-compressor` finds its held-out side
        config = TrainConfig(sources=tuple(self.pack.meta["corpus"]["sources"]), data_root=self.pack.meta["data_root"],
                             steps=PROVISIONAL_STEPS, kappa=self.pack.kappa, batch_size=self.batches[0],
                             save_every=PROVISIONAL_STEPS, seed=self.seed, **COMPRESSOR_LR)
        trainer = CompressorTrainer.create(self.decoder, config, self.scratch / "compressor",
                                           sampler=train_sampler(self.pack.docs, config))
        return self.run_phase(trainer, "compressor", start=0.0, end=self.share * self.budget.seconds,
                              min_steps=MIN_COMPRESSOR_STEPS, share=self.share, files=COMPRESSOR_FILES)

    def train_reader(self, compressor: Compressor, *, end: float) -> dict[str, Any]:
        """The reader LoRA on the examples' windows compressed by ``compressor``, until ``end``."""
        import torch

        from model.budget_data import reader_items
        from model.train_adapter import AdapterConfig, AdapterTrainer

        began = self.budget.now()
        vectors = self.compress_windows(compressor, end=end, began=began)
        with torch.no_grad():
            items = reader_items(self.pack, vectors, self.decoder.embed_ids)
        m = self.pack.meta
        meta = {"kind": "reader", "compressor": compressor.ident, "sources": m["reader"]["sources"],
                "data_root": m["data_root"], "unanswerable_share": m["reader"]["unanswerable_share"],
                "expand_tokens": m["expand_tokens"], "expand_share": m["expand_share"],
                "budget_train": {"data": self.data, "budget_s": self.budget.seconds, "compressor_share": self.share}}
        config = AdapterConfig(steps=PROVISIONAL_STEPS, batch_size=self.batches[1], save_every=PROVISIONAL_STEPS,
                               seed=self.seed)
        trainer = AdapterTrainer.create(self.decoder, config, self.scratch / "reader", items, meta=meta)
        self.say(f"reader: {len(items)} examples, {len(vectors)} windows compressed in "
                 f"{self.budget.now() - began:.1f} s")
        return self.run_phase(trainer, "reader", start=began, end=end, min_steps=MIN_READER_STEPS,
                              share=1 - self.share, files=READER_FILES, reserve=self.budget.seconds - end,
                              note=self.kept)

    def compress_windows(self, compressor: Compressor, *, end: float, began: float) -> list:
        """Summary vectors (kappa, d) of the reader's distinct windows; refused early when they would not
        be compressed well before ``end``."""
        windows, batch = self.pack.windows, self.batches[0]
        vectors: list = []
        started = self.budget.now()
        for start in range(0, len(windows), 8 * batch):
            vectors += compressor.compress(windows[start:start + 8 * batch], batch_size=batch)
            projected = started + (self.budget.now() - started) * len(windows) / len(vectors)
            if len(vectors) < len(windows) and projected > began + 0.5 * (end - began):
                need = 2 * (projected - began)
                raise BudgetTooSmallError(
                    f"compressing the reader's {len(windows)} context windows would take ~{projected - started:.0f} s, "
                    f"over half of the reader phase ({end - began:.0f} s); about "
                    f"{minutes_needed(need, 1 - self.share, self.budget.seconds - end)} minutes are needed{self.kept}")
        return vectors

    def run_phase(self, trainer: Any, phase: str, *, start: float, end: float, min_steps: int, share: float,
                  files: tuple[str, ...], reserve: float = 0.0, note: str = "") -> dict[str, Any]:
        """Train until the planned steps are done or ``end`` (seconds of the budget) is near: plan the
        steps after MEASURED of them, checkpoint then, every ``save_every_s`` and at the end. The phase
        began at ``start`` and has ``share`` of the budget less ``reserve`` (for the minutes it would need)."""
        began, durations = self.budget.now(), []
        saved = {"step": -1, "at": began, "seconds": 0.0}

        def save() -> None:
            t = self.budget.now()
            trainer.save()
            publish(trainer.out, self.out / phase, files)
            check_outputs(self.out)
            saved.update(step=trainer.step, at=self.budget.now(), seconds=max(saved["seconds"], self.budget.now() - t))

        replan_at = None
        while trainer.step < trainer.config.steps:
            if trainer.step >= MEASURED and self.budget.now() + max(durations[1:]) + saved["seconds"] > end:
                break
            t = self.budget.now()
            record = trainer.train_step()
            durations.append(self.budget.now() - t)
            self.log(phase, record)
            if trainer.step == MEASURED:
                for first_save in (False, True):  # refuse before writing a checkpoint when it cannot fit anyway
                    if first_save:
                        save()  # the first checkpoint: times a save and checks the output's size early
                    per_step = self.plan(trainer, durations, end=end, save_s=saved["seconds"])
                    if trainer.config.steps < min_steps:
                        shutil.rmtree(self.out / phase, ignore_errors=True)
                        need = self.budget.now() - start + (min_steps - trainer.step) * per_step + saved["seconds"]
                        raise BudgetTooSmallError(
                            f"only {trainer.config.steps} {phase} steps fit in this budget ({per_step:.2f} s per step, "
                            f"{self.budget.seconds / 60:.1f} minutes in all); at least {min_steps} are needed: give "
                            f"about {minutes_needed(need, share, reserve)} minutes or more{note}")
                replan_at = MEASURED + (trainer.config.steps - MEASURED) // 4
                self.say(f"{phase}: {per_step:.3f} s per step, {trainer.config.steps} steps planned to {end:.0f} s")
            elif trainer.step == replan_at:
                self.plan(trainer, durations, end=end, save_s=saved["seconds"])
            elif self.budget.now() - saved["at"] >= self.save_every_s:
                save()
        if saved["step"] != trainer.step:
            save()
        steady = durations[1:] or durations
        stats = {"steps": trainer.step, "planned_steps": trainer.config.steps,
                 "per_step_s": sum(steady) / len(steady), "save_s": saved["seconds"],
                 "seconds": self.budget.now() - began}
        self.say(f"{phase}: {trainer.step} steps in {stats['seconds']:.1f} s")
        return stats

    def plan(self, trainer: Any, durations: list[float], *, end: float, save_s: float) -> float:
        """Set the trainer's total steps (and its schedule, at the current step) to what fits before
        ``end``; returns the measured seconds per step."""
        steady = durations[1:]
        per_step = sum(steady) / len(steady)
        left = end - self.budget.now()
        saves = 1 + left / self.save_every_s
        steps = trainer.step + max(0, int((left - saves * save_s - max(steady)) / per_step))
        trainer.config = replace(trainer.config, steps=max(steps, trainer.step))
        trainer.scheduler = ts.schedule(trainer.optimizer, trainer.config, step=trainer.step)
        return per_step

    def evaluate(self, compressor: Compressor, *, batch_s: float) -> dict[str, Any] | None:
        """Gap closed etc. on the packed held-out pairs, as many batches as fit before the slack."""
        import torch

        from model.eval_compressor import score_pairs

        end = self.budget.seconds - self.budget.slack
        if not self.pack.heldout or self.budget.now() + batch_s > end:
            return None
        started, batches = self.budget.now(), [0]

        def stop() -> bool:
            batches[0] += 1
            return self.budget.now() + (self.budget.now() - started) / batches[0] > end

        with torch.no_grad():
            result = score_pairs(self.decoder, compressor, self.pack.heldout, batch_size=self.batches[0], stop=stop)
        return {**result, "seconds": self.budget.now() - started}

    def eval_reserve(self, per_step_s: float) -> float:
        """Seconds kept for the held-out evaluation: a compressor step per batch, at most EVAL_SHARE."""
        batches = math.ceil(len(self.pack.heldout) / self.batches[0])
        return min(EVAL_SHARE * self.budget.seconds, batches * per_step_s)


def _release(device: str) -> None:
    gc.collect()
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()


def _device(name: str) -> tuple[str, Any]:
    import torch

    from model.device import resolve_device

    device = resolve_device(name)
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InvalidInputError("--device cuda: no CUDA device here (use --device auto to fall back to the CPU)")
    cuda_bf16 = device.startswith("cuda") and torch.cuda.is_bf16_supported()
    return device, torch.bfloat16 if cuda_bf16 else torch.float32


def train(*, decoder: Path, data: Path, out: Path, seconds: float, compressor_share: float = 0.6, device: str = "auto",
          seed: int = 0, scratch: Path | None = None, name: str | None = None,
          batches: tuple[int | None, int | None] = (None, None),
          min_seconds: float = MIN_MINUTES * 60, clock: Callable[[], float] = time.monotonic,
          start: float | None = None, save_every_s: float = SAVE_EVERY_S) -> dict[str, Any]:
    """Train both models within ``seconds`` (from ``start`` on ``clock``) into ``out``; returns the summary."""
    budget = Budget(seconds, clock, start)
    if seconds < min_seconds:
        raise BudgetTooSmallError(f"a budget of {seconds / 60:.2f} minutes is too small to help: give at least "
                                  f"{min_seconds / 60:g} minutes (--minutes)")
    if not 0.05 <= compressor_share <= 0.95:
        raise InvalidInputError(f"--compressor-share must be between 0.05 and 0.95, got {compressor_share}")
    from model.loading import load_decoder

    pack = read_pack(data)
    if not (Path(decoder) / "config.json").is_file():
        raise NotFoundError(f"--decoder {decoder}: not a Hugging Face model folder (no config.json)")
    if not any(Path(decoder).glob("*.safetensors")) and not any(Path(decoder).glob("*.bin")):
        raise NotFoundError(f"--decoder {decoder} holds no weights (*.safetensors): they do not travel with the "
                            "repository, see docs/models/gpu-training.md")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InvalidInputError(f"--out {out} is not an empty folder: choose a new one")
    if scratch is not None and Path(scratch).resolve().is_relative_to(out.resolve()):
        raise InvalidInputError(f"--scratch {scratch} is inside --out {out}: its files must not come back")
    device_name, dtype = _device(device)
    kind = "cuda" if device_name.startswith("cuda") else "cpu"
    sizes = tuple(given or default for given, default in zip(batches, BATCHES[kind], strict=True))
    dec = load_decoder(Path(decoder), name=name or Path(decoder).name, device=device_name, dtype=dtype)
    if tokenizer_fingerprint(dec.tokenizer) != pack.meta["tokenizer"]:
        raise InvalidInputError(f"--data {data} was packed with another tokenizer than {decoder}'s: pack it again "
                                "with --decoder pointing at this model")
    out.mkdir(parents=True, exist_ok=True)
    own_scratch = scratch is None
    scratch = Path(tempfile.mkdtemp(prefix="lloco-budget-")) if own_scratch else Path(scratch)
    run = BudgetRun(dec, pack, out=out, scratch=scratch, budget=budget, compressor_share=compressor_share, seed=seed,
                    batches=sizes, data=str(data), save_every_s=save_every_s)
    run.say(f"decoder {dec.name} on {device_name} ({dtype}); {len(pack.docs)} documents, {len(pack.examples)} reader "
            f"examples, {len(pack.heldout)} held-out pairs; budget {seconds:.0f} s; scratch {scratch}")
    try:
        comp = run.train_compressor()
        _release(device_name)
        from model.compressor import load_compressor

        compressor = load_compressor(str(out / "compressor"), dec, kappa=pack.kappa)
        reserve = run.eval_reserve(comp["per_step_s"]) + budget.slack
        reader = run.train_reader(compressor, end=seconds - reserve)
        evaluation = run.evaluate(compressor, batch_s=comp["per_step_s"])
    finally:
        if own_scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    summary = {"phase": "summary", "device": device_name, "budget_s": seconds, "compressor": comp, "reader": reader,
               "heldout_eval": evaluation, "elapsed": round(budget.now(), 3)}
    ts.append_log(out, summary)
    summary["files"] = check_outputs(out)
    return summary


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m model.budget_train", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="Train the compressor, then the reader on it, within --minutes.")
    t.add_argument("--decoder", type=Path, required=True, help="The base model's Hugging Face folder.")
    t.add_argument("--data", type=Path, required=True, help="The folder bench/pack_budget_data.py wrote.")
    t.add_argument("--out", type=Path, required=True, help="A new folder for compressor/, reader/ and log.jsonl.")
    t.add_argument("--minutes", type=float, help=f"The whole budget, loading included (at least {MIN_MINUTES:g}).")
    t.add_argument("--max-seconds", type=float, help="For tests: the budget in seconds, without the minimum.")
    t.add_argument("--compressor-share", type=float, default=0.6, help="Share of the budget for the compressor.")
    t.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--name", help="The base model's name, recorded in the checkpoints (default: the folder's name).")
    t.add_argument("--scratch", type=Path, help="Resume files (default: a temporary folder, removed at the end).")
    t.add_argument("--compressor-batch", type=int, help="Pairs per compressor step (default 32 on CUDA, 4 on CPU).")
    t.add_argument("--reader-batch", type=int, help="Examples per reader step (default 16 on CUDA, 8 on CPU).")
    t.add_argument("--save-every-s", type=float, default=SAVE_EVERY_S, help="Seconds between checkpoints.")
    return p


def main(argv: list[str] | None = None, *, clock: Callable[[], float] = time.monotonic) -> int:
    """The command line: prints a summary line and returns 0, or prints the error in one line and returns 2."""
    start = clock()
    for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_DISABLE_PROGRESS_BARS"):
        os.environ.setdefault(key, "1")  # the device machine reaches no network
    args = parser().parse_args(argv)
    try:
        if (args.minutes is None) == (args.max_seconds is None):
            raise InvalidInputError("give the budget as --minutes (or, for tests, --max-seconds)")
        summary = train(decoder=args.decoder, data=args.data, out=args.out,
                        seconds=args.max_seconds if args.max_seconds is not None else args.minutes * 60,
                        min_seconds=0.0 if args.max_seconds is not None else MIN_MINUTES * 60,
                        compressor_share=args.compressor_share, device=args.device, seed=args.seed,
                        scratch=args.scratch, name=args.name, batches=(args.compressor_batch, args.reader_batch),
                        clock=clock, start=start, save_every_s=args.save_every_s)
    except LlocoError as exc:
        print("error: " + " ".join(str(exc).split()), file=sys.stderr)
        return 2
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
