"""Train the summary-token compressor (AutoCompressor style, as LLoCO's compressor).

Trained: the kappa summary-token embeddings (kappa, d), initialised as
:func:`~model.compressor.untrained_summary_embeddings`, a peft LoRA (r=8 on q/k/v/o) on a
private copy of the base model and a (d, d) output projection, initialised as a scaled identity
that brings the post-norm hidden states (norm ~50) to the token embeddings' norm (~3). Per (A, B)
pair from the corpus:

- S = W h + b, h = compressor(A): the copy *with* the LoRA reads [A ; summary tokens]; its final
  hidden states at the kappa summary positions (or, ``pooling='mean'``, the means of kappa equal
  windows of A's own positions), via :func:`~model.compressor.chunk_hidden_states` and
  :func:`~model.compressor.project`, the very functions inference uses;
- next-segment LM: the same copy with the LoRA *disabled* (= the frozen decoder) reads [S ; B]
  and predicts B, so the gradient reaches only S (and through it the compressor);
- reconstruction: the frozen decoder reads [S ; " Repeat:" ; A] and predicts A; with
  ``fact_weight`` > 0 the tokens of A's numbers and named entities (:mod:`model.fact_probe`) weigh
  1 + fact_weight in its mean, as these are what lloco answers need and plain next-segment
  prediction lets S drop.

loss = lm + recon_weight * recon. A run may start from another checkpoint's weights (``init_from``,
e.g. the shipped compressor) with a fresh optimizer and schedule. AdamW (summary embeddings and LoRA at their own learning rates),
linear warm-up then cosine decay to 10 %, gradient accumulation and clipping; bf16 autocast on
CUDA, fp32 elsewhere. Pairs are a function of (seed, index), so ``resume`` replays the same data.
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from model import train_state as ts
from model.compressor import (
    POOLINGS,
    Pooling,
    chunk_hidden_states,
    project,
    save_compressor,
    untrained_summary_embeddings,
)
from model.corpus import DEFAULT_SOURCES, HELDOUT_EVERY, SourceStats, iter_documents
from model.errors import InvalidInputError, NotFoundError
from model.fact_probe import fact_weights
from model.segment_pairs import (
    RECON_PROMPT,
    Pair,
    PairSampler,
    TokenDoc,
    assemble,
    summary_then_next,
    summary_then_repeat,
    token_scores,
    token_stats,
    tokenize_corpus,
    weighted_nll,
)

if TYPE_CHECKING:
    import torch

    from model.loading import Decoder

MIN_PAIR_SPANS = 8  # training refuses corpora with fewer than 8 x (max_segment + next_segment) usable tokens


@dataclass(frozen=True)
class TrainConfig:
    """How the compressor is trained; each field's help is what `lloco train compressor --help` shows."""

    sources: tuple[str, ...] = ts.option(DEFAULT_SOURCES, "Corpora of documents to compress: qmsum, squality, narrativeqa, squad, essays, financebench.")
    data_root: str = ts.option("../shared/eval-data", "The eval-data folder.")
    steps: int = ts.option(1000, "Optimizer steps.")
    kappa: int = ts.option(8, "Summary vectors per segment (the CLI's default: the summary_tokens setting).")
    pooling: Pooling = ts.option("tokens", "Where the kappa vectors come from: 'tokens' (hidden states at kappa learned "
                                 "summary tokens after the segment) or 'mean' (local vectors: the segment's hidden "
                                 "states averaged over kappa equal windows; the summary embeddings are then unused).")
    min_segment: int = ts.option(128, "Shortest segment A to compress, in tokens.")
    max_segment: int = ts.option(256, "Longest segment A, in tokens.")
    next_segment: int = ts.option(128, "Length of the next segment B, in tokens.")
    batch_size: int = ts.option(4, "Pairs per micro-batch.")
    grad_accum: int = ts.option(1, "Micro-batches per optimizer step.")
    lr: float = ts.option(2e-4, "LoRA learning rate.")
    summary_lr: float = ts.option(1e-3, "Summary-embedding learning rate.")
    projection: bool = ts.option(True, "Learn an output projection of the summary vectors (off: raw post-norm hidden states).")
    projection_lr: float = ts.option(5e-4, "Projection learning rate.")
    recon_weight: float = ts.option(1.0, "Weight of the reconstruction loss.")
    fact_weight: float = ts.option(0.0, "Extra weight of number and named-entity tokens in the reconstruction loss (0: a plain mean; 4: such tokens count 5x).")
    init_from: str | None = ts.option(None, "Start from this compressor checkpoint's weights (e.g. the shipped one) with a fresh optimizer and schedule.")
    lora_r: int = ts.option(8, "LoRA rank.")
    lora_alpha: int = ts.option(16, "LoRA alpha.")
    lora_dropout: float = ts.option(0.0, "LoRA dropout.")
    lora_targets: tuple[str, ...] = ts.option(("q_proj", "k_proj", "v_proj", "o_proj"), "Modules the LoRA adapts.")
    warmup_steps: int = ts.option(50, "Linear warm-up steps before the cosine schedule.")
    max_grad_norm: float = ts.option(1.0, "Gradient clipping norm.")
    save_every: int = ts.option(100, "Checkpoint every N steps.")
    seed: int = ts.option(0, "Seed of the LoRA initialisation and the data order.")
    heldout_every: int = ts.option(HELDOUT_EVERY, "Every Nth document is held out of training (for eval-compressor).")

    def __post_init__(self) -> None:
        checks = {"steps": self.steps >= 1, "kappa": self.kappa >= 1, "batch_size": self.batch_size >= 1,
                  "grad_accum": self.grad_accum >= 1, "save_every": self.save_every >= 1,
                  "lr": self.lr > 0 and self.summary_lr > 0 and self.projection_lr > 0, "recon_weight": self.recon_weight >= 0,
                  "fact_weight": self.fact_weight >= 0, "pooling": self.pooling in POOLINGS,
                  "warmup_steps": self.warmup_steps >= 0, "sources": bool(self.sources),
                  "min_segment/max_segment": 1 <= self.min_segment <= self.max_segment,
                  "next_segment": self.next_segment >= 2}
        ts.refuse_bad_settings(checks, "training")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        return ts.config_from_dict(cls, data)


# Settings that may change when resuming; every other one must match the checkpoint's. A larger
# ``steps`` extends the run: the cosine schedule is stretched to the new end, so the learning rate
# goes back up to where the longer schedule has it at the checkpoint's step (a warm restart).
RESUME_MAY_CHANGE = {"data_root", "save_every", "steps"}


def resolve_config(out: Path, given: dict[str, Any], *, resume: bool) -> TrainConfig:
    """The run's config: ``given`` (explicit options) over the defaults, or over the checkpoint's."""
    if not resume:
        if ts.has_checkpoint(out):
            step = ts.read_state(out)["step"]
            raise InvalidInputError(f"{out} already holds a compressor checkpoint (step {step}): pass --resume "
                                    "to continue it, or choose another --out")
        return TrainConfig(**given)
    if not ts.has_checkpoint(out):
        raise NotFoundError(f"nothing to resume: {out} has no {ts.STATE_FILE}")
    state = ts.read_state(out)
    saved = TrainConfig.from_dict(state["config"])
    if given.get("steps") is not None and given["steps"] < state["step"]:
        raise InvalidInputError(f"--steps {given['steps']} is before the checkpoint's step {state['step']}: "
                                "to extend a run, give more steps than it has made")
    changed = [k for k, v in given.items() if k not in RESUME_MAY_CHANGE and getattr(saved, k) != v]
    if changed:
        raise InvalidInputError("--resume keeps the checkpoint's settings; these differ: "
                                + ", ".join(f"{k} (checkpoint {getattr(saved, k)!r}, given {given[k]!r})" for k in changed))
    return replace(saved, **given)


def prepare_corpus(decoder: Decoder, config: TrainConfig) -> tuple[PairSampler, list[SourceStats]]:
    """Tokenize the sources once: the training pair sampler and documents/tokens per source."""
    docs = tokenize_corpus(iter_documents(config.sources, config.data_root, heldout_every=config.heldout_every),
                           decoder.tokenizer, heldout_every=config.heldout_every)
    return train_sampler(docs, config), token_stats(docs, config.sources)


def train_sampler(docs: list[TokenDoc], config: TrainConfig) -> PairSampler:
    """The training pair sampler over the documents of ``docs`` that are not held out."""
    return PairSampler([d for d in docs if not d.heldout], min_segment=config.min_segment,
                       max_segment=config.max_segment, next_segment=config.next_segment, seed=config.seed,
                       min_tokens=MIN_PAIR_SPANS * (config.max_segment + config.next_segment))


def training_precision(device: str) -> tuple[torch.dtype, torch.dtype | None]:
    """(weights dtype of the training copy, autocast dtype or None): bf16 autocast on CUDA, fp32 elsewhere."""
    import torch

    from model.device import resolve_dtype

    if device.startswith("cuda") and resolve_dtype("auto", "cuda") == torch.bfloat16:
        return torch.bfloat16, torch.bfloat16
    return torch.float32, None


class CompressorTrainer:
    """The trainable compressor (summary embeddings + LoRA on a copy of the base), its optimizer
    and its output folder. :meth:`create` starts or resumes a run; :meth:`run` trains."""

    def __init__(self, decoder: Decoder, config: TrainConfig, out: Path, sampler: PairSampler | None) -> None:
        import torch
        from peft import LoraConfig, get_peft_model

        self.decoder, self.config, self.out, self.sampler = decoder, config, Path(out), sampler
        self.device = decoder.device
        weights_dtype, self.autocast_dtype = training_precision(self.device)
        torch.manual_seed(config.seed)  # LoRA initialisation
        base = base_copy(decoder).to(self.device, weights_dtype)
        lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                          target_modules=list(config.lora_targets), bias="none")
        self.model = get_peft_model(base, lora)  # freezes the base; LoRA weights in fp32
        init = untrained_summary_embeddings(decoder, config.kappa)  # (kappa, d)
        self.summary = torch.nn.Parameter(init.to(self.device, torch.float32))
        self.lora_params = [p for p in self.model.parameters() if p.requires_grad]
        d = init.shape[1]
        self.projection = (torch.nn.Parameter(torch.eye(d, device=self.device)),
                           torch.nn.Parameter(torch.zeros(d, device=self.device))) if config.projection else None
        groups = [{"params": [self.summary], "lr": config.summary_lr, "weight_decay": 0.0},
                  {"params": self.lora_params, "lr": config.lr, "weight_decay": 0.0}]
        if self.projection:
            groups.append({"params": list(self.projection), "lr": config.projection_lr, "weight_decay": 0.0})
        self.optimizer = torch.optim.AdamW(groups)
        self.scheduler = ts.schedule(self.optimizer, config)
        self.prompt_ids = decoder.encode(RECON_PROMPT)
        self.step, self.tokens_seen, self.elapsed = 0, 0, 0.0

    @classmethod
    def create(cls, decoder: Decoder, config: TrainConfig, out: Path, *, resume: bool = False,
               sampler: PairSampler | None = None) -> CompressorTrainer:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        if sampler is None:
            sampler, _ = prepare_corpus(decoder, config)
        trainer = cls(decoder, config, out, sampler)
        if resume:
            trainer.restore()
        elif config.init_from:
            trainer.load_weights(Path(config.init_from), widen=True)
        elif trainer.projection:
            trainer.scale_projection()
        return trainer

    # -------------------------------------------------------------------------- forward
    def _embed(self, ids: list[int]) -> torch.Tensor:
        import torch

        table = self.model.get_input_embeddings()
        return table(torch.tensor(ids, dtype=torch.long, device=self.device))  # (n, d)

    def _autocast(self) -> contextlib.AbstractContextManager:
        import torch

        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda", dtype=self.autocast_dtype)

    def summary_vectors(self, chunks: list[list[int]]) -> torch.Tensor:
        """S for token-id chunks, with the LoRA on: (B, kappa, d) float32 (differentiable under grad)."""
        inner = self.model.get_base_model().get_decoder()
        hidden = chunk_hidden_states(inner, [self._embed(ids) for ids in chunks], self.summary, pooling=self.config.pooling)
        return project(hidden, self.projection)

    def scale_projection(self) -> None:
        """Start the projection at c * I, c = mean token-embedding norm / mean summary hidden-state norm
        on the first training batch, so the decoder first sees S at the scale of its own inputs."""
        import torch

        with torch.no_grad():
            hidden = chunk_hidden_states(self.model.get_base_model().get_decoder(),
                                         [self._embed(p.a) for p in self.micro_batches(0)[0]], self.summary,
                                         pooling=self.config.pooling)
            table = self.model.get_input_embeddings().weight.float()  # (V, d)
            scale = float(table.norm(dim=-1).mean() / hidden.norm(dim=-1).mean())
            self.projection[0].mul_(scale)

    def _frozen_score(self, rows: list, weights: list[list[float]] | None = None) -> torch.Tensor:
        """Mean NLL per scored token of the frozen decoder (LoRA off) on assembled rows; with
        ``weights`` (per row, one per scored token of its last piece) the weighted mean."""
        import torch

        embeds, mask, labels = assemble(rows, dtype=self.model.get_input_embeddings().weight.dtype)
        with self.model.disable_adapter():
            logits = self.model(inputs_embeds=embeds, attention_mask=mask, use_cache=False).logits  # (B, L, V)
        if weights is None:
            nll, n, _ = token_scores(logits, labels)
            return nll / n
        lengths = mask.sum(dim=1).tolist()  # right-padded: a row's last piece ends at its length
        rows_w = [[0.0] * (n - len(w)) + w + [0.0] * (labels.shape[1] - n) for w, n in zip(weights, lengths, strict=True)]
        return weighted_nll(logits, labels, torch.tensor(rows_w, device=labels.device))  # weights (B, L)

    def losses(self, pairs: list[Pair]) -> tuple[torch.Tensor, torch.Tensor]:
        """(next-segment LM loss, reconstruction loss) of one micro-batch, both scalar tensors."""
        import torch

        with self._autocast():
            summary = self.summary_vectors([p.a for p in pairs])  # (B, kappa, d)
            lm = self._frozen_score([summary_then_next(summary[i], p.b, self._embed) for i, p in enumerate(pairs)])
            if self.config.recon_weight == 0:
                return lm, torch.zeros((), device=lm.device)
            rows = [summary_then_repeat(summary[i], self.prompt_ids, p.a, self._embed) for i, p in enumerate(pairs)]
            weights = ([fact_weights(self.decoder.tokenizer, p.a, boost=self.config.fact_weight) for p in pairs]
                       if self.config.fact_weight else None)
            return lm, self._frozen_score(rows, weights)

    def loss_on(self, pairs: list[Pair]) -> dict[str, float]:
        """Losses on a fixed batch, without training."""
        import torch

        with torch.no_grad():
            lm, recon = self.losses(pairs)
        return {"lm": float(lm), "recon": float(recon), "total": float(lm + self.config.recon_weight * recon)}

    # ------------------------------------------------------------------------- training
    def micro_batches(self, step: int) -> list[list[Pair]]:
        """The pairs of optimizer step ``step`` (0-based): grad_accum micro-batches of batch_size."""
        c = self.config
        first = step * c.batch_size * c.grad_accum
        return [self.sampler.pairs(first + i * c.batch_size, c.batch_size) for i in range(c.grad_accum)]

    def train_step(self, batches: list[list[Pair]] | None = None) -> dict[str, Any]:
        """One optimizer step (on ``batches``, or on the sampler's pairs for this step); logs it."""
        import torch

        started = time.perf_counter()
        self.model.train()
        batches = batches if batches is not None else self.micro_batches(self.step)
        lm_sum = recon_sum = 0.0
        for pairs in batches:
            lm, recon = self.losses(pairs)
            ((lm + self.config.recon_weight * recon) / len(batches)).backward()
            lm_sum, recon_sum = lm_sum + float(lm.detach()), recon_sum + float(recon.detach())
            self.tokens_seen += sum(len(p.a) + len(p.b) for p in pairs)
        grad_norm = torch.nn.utils.clip_grad_norm_(self._trained(), self.config.max_grad_norm)
        lrs = [group["lr"] for group in self.optimizer.param_groups]
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        self.elapsed += time.perf_counter() - started
        lm_mean, recon_mean = lm_sum / len(batches), recon_sum / len(batches)
        record = {"step": self.step, "lm": lm_mean, "recon": recon_mean,
                  "total": lm_mean + self.config.recon_weight * recon_mean, "lr": lrs[1], "lr_summary": lrs[0],
                  "grad_norm": float(grad_norm), "tokens_seen": self.tokens_seen, "elapsed_s": round(self.elapsed, 3)}
        ts.append_log(self.out, record)
        return record

    def _trained(self) -> list[torch.Tensor]:
        return [self.summary, *self.lora_params, *(self.projection or ())]

    def run(self, *, stop_at: int | None = None, on_step: Callable[[dict[str, Any]], None] | None = None) -> None:
        """Train up to config.steps (or ``stop_at``), saving every save_every steps and at the end."""
        ts.run_steps(self, min(self.config.steps, stop_at or self.config.steps), on_step)

    # ---------------------------------------------------------------------- checkpoints
    def save(self) -> Path:
        """Write the checkpoint (loadable by load_compressor) and the resume state into the output folder."""
        staged = ts.staging_dir(self.out)
        extra = {"trained_steps": self.step, "tokens_seen": self.tokens_seen, "training": asdict(self.config)}
        save_compressor(staged, self.summary.detach(), base=self.decoder.name, hidden_size=self.decoder.hidden_size,
                        projection=self.projection, pooling=self.config.pooling, extra=extra)
        self.model.save_pretrained(str(staged / ts.LORA_DIR))
        ts.save_state(self, staged)
        ts.publish(self.out, staged)
        ts.plot_losses(self.out)
        return self.out

    def restore(self) -> None:
        """Continue from the output folder's checkpoint: weights, optimizer, schedule, step and RNG."""
        self.load_weights(self.out)
        ts.restore_state(self)  # the schedule of this run's config: stretched if --steps extended it

    def load_weights(self, folder: Path, *, widen: bool = False) -> None:
        """Summary embeddings, projection and LoRA from a lloco compressor checkpoint folder (this
        run's own, or ``init_from``'s); refuses one trained with other shapes or without a projection.
        ``widen`` (``init_from``): a checkpoint with fewer summary tokens, kappa0 dividing this run's
        kappa, starts this run's tokens as its own repeated kappa / kappa0 times, the copies told apart
        by a little seeded noise (1 % of the embeddings' spread)."""
        import torch
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        from model.compressor import PROJ_BIAS, PROJ_WEIGHT, SUMMARY_FILE, SUMMARY_KEY

        lora_file = folder / ts.LORA_DIR / "adapter_model.safetensors"
        if not (folder / SUMMARY_FILE).is_file() or not lora_file.is_file():
            raise NotFoundError(f"{folder} is not a lloco compressor checkpoint (needs {SUMMARY_FILE} and "
                                f"{ts.LORA_DIR}/adapter_model.safetensors)")
        tensors = load_file(folder / SUMMARY_FILE, device=str(self.device))
        learned, (kappa, d) = tensors[SUMMARY_KEY], tuple(self.summary.shape)  # (kappa0, d)
        if widen and learned.shape[1] == d and learned.shape[0] < kappa and kappa % learned.shape[0] == 0:
            generator = torch.Generator().manual_seed(self.config.seed)
            noise = torch.randn(kappa, d, generator=generator).to(learned.device) * 0.01 * float(learned.float().std())
            tensors[SUMMARY_KEY] = learned.repeat(kappa // learned.shape[0], 1) + noise.to(learned.dtype)  # (kappa, d)
        if tuple(tensors[SUMMARY_KEY].shape) != tuple(self.summary.shape):
            raise InvalidInputError(f"{folder}: summary embeddings {tuple(tensors[SUMMARY_KEY].shape)} do not fit "
                                    f"this run's {tuple(self.summary.shape)} (kappa, d): train with its kappa "
                                    "(or, from init_from, a multiple of it)")
        if self.projection and PROJ_WEIGHT not in tensors:
            raise InvalidInputError(f"{folder} has no output projection: start it with --no-projection")
        with torch.no_grad():
            self.summary.copy_(tensors[SUMMARY_KEY])
            if self.projection:
                self.projection[0].copy_(tensors[PROJ_WEIGHT])
                self.projection[1].copy_(tensors[PROJ_BIAS])
        result = set_peft_model_state_dict(self.model, load_file(lora_file, device=str(self.device)))
        if getattr(result, "unexpected_keys", None):
            raise InvalidInputError(f"{folder}: LoRA checkpoint does not fit this model ({result.unexpected_keys[:3]})")


def base_copy(decoder: Decoder):
    """A private copy of the decoder's plain base model (never the one that serves questions)."""
    if hasattr(decoder.model, "peft_config"):  # adapters are injected into the served model: reload it clean
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM.from_pretrained(decoder.folder, dtype=decoder.dtype)
    return copy.deepcopy(decoder.base_model)
