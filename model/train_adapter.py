"""Train a LoRA adapter on the decoder to answer from summary vectors ("learning the context offline").

Each example is a question, its answer, the instruction and the contexts that stand for the
retrieved chunks: (kappa, d) summary vectors, exactly what lloco mode puts in the prompt. The
prompt is built by :func:`~model.prompts.build_prompt` (the same chat prompt inference builds),
the answer follows it with the end-of-turn token, and only the answer's tokens are scored:

    loss = mean NLL of [answer ; eos] given [chat prompt with S_1 .. S_k and the question]
           + distill_weight * KL(teacher || student) at the same answer positions

The distillation term (xRAG, arXiv 2405.13792: a KL term to RAG-mode logits) is on when
``distill_weight`` > 0 and the examples carry their contexts' text: the teacher is the frozen base
decoder (LoRA off) reading the *text* of the same windows in the same chat prompt — plain RAG mode
— or, with ``distill_teacher``, the base with that adapter (``rag+reader``: a text reader that keeps
the short answer style the reader is trained to), teacher-forced on the same answer; its top ``distill_top_k`` log-probabilities per answer token
are computed once when the run starts and stored with the examples, so a resumed run reads them
back. Over those k tokens the term is sum p_t (log p_t - log q_s), >= 0 and 0 only when the reader
gives each of them the teacher's probability.

Trained: a peft LoRA (r=8 on q/k/v/o by default) on a private copy of the base model; the
summary vectors are inputs, fixed. The output folder is a peft adapter folder (loadable by
:meth:`model.loading.Decoder.session`) plus ``lloco_adapter.json`` (how it was trained),
``trainer_state.pt`` (resume), ``examples.pt`` (the examples with their vectors, so a resumed run
reads the same data without compressing again), ``log.jsonl`` and ``loss.png``.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from model import train_state as ts
from model.errors import InvalidInputError, NotFoundError
from model.prompts import Context, build_prompt
from model.segment_pairs import IGNORE, assemble, token_scores

if TYPE_CHECKING:
    import torch

    from model.loading import Decoder

META = "lloco_adapter.json"
EXAMPLES = "examples.pt"
TEACHER = "teacher"  # peft name of the distillation teacher's adapter while it reads
MIN_EXAMPLES = 8
COLLECTION_STEPS = 100  # a collection's own adapter: it starts from the reader, on fewer and narrower questions



_FULL_STOP = re.compile(r"(?<![.\s])\.\s*$")


def answer_target(answer: str) -> str:
    """The text an answer adapter learns to say: the answer without a closing full stop.

    A trained answer ends with the end-of-turn token; NarrativeQA's references end with "." (162 of
    the shipped reader's 400 NarrativeQA examples), which taught the reader that "." ends an answer,
    so it stopped at a decimal point ("14." for "14.3%", issue 27). "etc..." and "..." are kept."""
    return _FULL_STOP.sub("", answer.strip())

@dataclass(frozen=True)
class QAItem:
    """One training example: contexts are (kappa, d) summary vectors (float16 is fine)."""

    question: str
    answer: str
    instruction: str
    contexts: list[torch.Tensor]
    source: str = "qa"
    texts: list[list[int]] | None = None  # the contexts' windows as token ids: the distillation teacher's RAG prompt
    teacher: tuple[torch.Tensor, torch.Tensor] | None = None  # top-k (ids (n, k) int, log-probs (n, k)) per answer token


@dataclass(frozen=True)
class AdapterConfig:
    """How a reader (or collection) adapter is trained; each field's help is what `lloco train adapter
    --help` shows."""

    steps: int = ts.option(150, "Optimizer steps.")
    batch_size: int = ts.option(8, "Examples per step.")
    lr: float = ts.option(3e-4, "LoRA learning rate.")
    lora_r: int = ts.option(8, "LoRA rank.")
    lora_alpha: int = ts.option(16, "LoRA alpha.")
    lora_dropout: float = ts.option(0.05, "LoRA dropout.")
    lora_targets: tuple[str, ...] = ts.option(("q_proj", "k_proj", "v_proj", "o_proj"), "Modules the LoRA adapts.")
    warmup_steps: int = ts.option(10, "Linear warm-up steps.")
    max_grad_norm: float = ts.option(1.0, "Gradient clipping norm.")
    max_answer_tokens: int = ts.option(64, "Answer tokens scored per example (longer answers are cut).")
    save_every: int = ts.option(25, "Checkpoint every N steps.")
    seed: int = ts.option(0, "Seed of the example draw, the LoRA initialisation and the order.")
    distill_weight: float = ts.option(0.0, "Reader adapter: weight of the KL term to a text-reading teacher's answer distributions (xRAG; 0 = off).")
    distill_top_k: int = ts.option(32, "Teacher log-probabilities kept per answer token.")
    distill_teacher: str = ts.option("", "Reader adapter: the adapter the distillation teacher reads the text with (e.g. the shipped reader: rag+reader); empty: the bare base decoder.")

    def __post_init__(self) -> None:
        checks = {"steps": self.steps >= 1, "batch_size": self.batch_size >= 1, "lr": self.lr > 0,
                  "lora_r": self.lora_r >= 1, "save_every": self.save_every >= 1,
                  "max_answer_tokens": self.max_answer_tokens >= 1, "warmup_steps": self.warmup_steps >= 0,
                  "lora_dropout": 0 <= self.lora_dropout < 1, "distill_weight": self.distill_weight >= 0,
                  "distill_top_k": self.distill_top_k >= 1}
        ts.refuse_bad_settings(checks, "adapter training")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AdapterConfig:
        return ts.config_from_dict(cls, data)


def window_contexts(vectors: list[torch.Tensor], sentences: list[list[int]],
                    embed: Callable[[list[int]], torch.Tensor]) -> list[torch.Tensor]:
    """An example's contexts as lloco mode's (expanded) prompt holds them: each window's (kappa, d)
    vectors, followed by its sentences' (n, d) input-embedding rows (``embed``) when it has any."""
    out = []
    for v, ids in zip(vectors, sentences, strict=True):
        out.append(v)
        if ids:
            out.append(embed(ids).detach().cpu())  # (n, d)
    return out


def check_items(items: list[QAItem], *, distill: bool = False) -> None:
    """Refuse too few examples, or examples with an empty question or answer (or, to distil, without
    their contexts' text), precisely."""
    if len(items) < MIN_EXAMPLES:
        raise InvalidInputError(f"adapter training needs at least {MIN_EXAMPLES} QA examples, got {len(items)}")
    if distill and any(not item.texts and item.teacher is None for item in items):
        raise InvalidInputError("distillation needs each example's context text (the teacher reads it): these "
                                "examples carry only vectors; train with --distill-weight 0")
    for i, item in enumerate(items):
        if not item.question.strip() or not item.answer.strip():
            raise InvalidInputError(f"QA example {i} has an empty {'question' if not item.question.strip() else 'answer'}")


class AdapterTrainer:
    """The LoRA being trained, its examples, optimizer and output folder."""

    def __init__(self, decoder: Decoder, config: AdapterConfig, out: Path, items: list[QAItem], *,
                 meta: dict[str, Any] | None = None, init_from: str | None = None) -> None:
        """``init_from``: an adapter folder to continue from (its LoRA shape wins over the config's)."""
        import torch
        from peft import LoraConfig, PeftModel, get_peft_model

        from model.train_compressor import base_copy, training_precision

        check_items(items, distill=config.distill_weight > 0)
        self.decoder, self.config, self.out, self.items = decoder, config, Path(out), items
        self.meta = meta or {}
        self.device = decoder.device
        weights_dtype, self.autocast_dtype = training_precision(self.device)
        torch.manual_seed(config.seed)
        base = base_copy(decoder).to(self.device, weights_dtype)
        if init_from:
            from model.loading import check_adapter

            check_adapter(init_from, base)  # a missing, damaged or foreign adapter: refused before training
            self.model = PeftModel.from_pretrained(base, str(init_from), is_trainable=True)
        else:
            lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                              target_modules=list(config.lora_targets), bias="none", task_type="CAUSAL_LM")
            self.model = get_peft_model(base, lora)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.params, lr=config.lr, weight_decay=0.0)
        self.scheduler = ts.schedule(self.optimizer, config)
        self.eos = decoder.tokenizer.eos_token_id
        self.step, self.tokens_seen, self.elapsed = 0, 0, 0.0

    @classmethod
    def create(cls, decoder: Decoder, config: AdapterConfig, out: Path, items: list[QAItem] | None, *,
               resume: bool = False, meta: dict[str, Any] | None = None, init_from: str | None = None,
               teacher_progress: Callable[[int, int], None] | None = None) -> AdapterTrainer:
        """Start a run on ``items`` in ``out``, or (``resume``) continue the one there on its own examples.
        ``teacher_progress(done, total)``: called as the distillation teacher reads the examples."""
        out = Path(out)
        if resume:
            if not ts.has_checkpoint(out):
                raise NotFoundError(f"nothing to resume: {out} has no {ts.STATE_FILE}")
            saved = AdapterConfig.from_dict(ts.read_state(out)["config"])
            config = replace(saved, save_every=config.save_every)
            meta = json.loads((out / META).read_text()) if (out / META).is_file() else meta
            trainer = cls(decoder, config, out, load_items(out / EXAMPLES), meta=meta,
                          init_from=(meta or {}).get("init_from"))
            trainer.restore()
            return trainer
        if ts.has_checkpoint(out):
            raise InvalidInputError(f"{out} already holds an adapter checkpoint: pass --resume or choose another --out")
        out.mkdir(parents=True, exist_ok=True)
        trainer = cls(decoder, config, out, items or [], meta={**(meta or {}), "init_from": init_from}, init_from=init_from)
        if config.distill_weight > 0:
            trainer.items = trainer.with_teacher(trainer.items, progress=teacher_progress)
        save_items(out / EXAMPLES, trainer.items)
        trainer.items = load_items(out / EXAMPLES)  # float16 contexts, exactly what a resumed run reads
        return trainer

    @property
    def examples_by_source(self) -> dict[str, int]:
        return dict(Counter(item.source for item in self.items))

    # -------------------------------------------------------------------------- forward
    def _autocast(self) -> contextlib.AbstractContextManager:
        import torch

        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda", dtype=self.autocast_dtype)

    def row(self, item: QAItem, *, text: bool = False) -> list:
        """Pieces of one example: the prompt (unscored) and [answer ; eos] (scored). ``text``: the
        teacher's prompt, the contexts' windows as tokens (RAG mode) instead of their vectors."""
        import torch

        table = self.model.get_input_embeddings()
        contexts = ([Context(token_ids=list(ids)) for ids in item.texts] if text
                    else [Context(vectors=v) for v in item.contexts])
        parts = build_prompt(self.decoder.tokenizer, question=item.question, contexts=contexts,
                             instruction=item.instruction)
        with torch.no_grad():  # inputs only: the LoRA does not touch the embedding table
            rows = [table(torch.tensor(self.decoder.encode(p), device=self.device)) if isinstance(p, str)
                    else table(torch.tensor(p.token_ids, device=self.device)) if p.token_ids is not None
                    else p.vectors.to(self.device, table.weight.dtype) for p in parts]
            answer = self.decoder.encode(" " + answer_target(item.answer))[: self.config.max_answer_tokens] + [self.eos]
            answer_embeds = table(torch.tensor(answer, device=self.device))
        return [(torch.cat(rows), None), (answer_embeds, answer)]

    def with_teacher(self, items: list[QAItem], *, batch_size: int | None = None,
                     progress: Callable[[int, int], None] | None = None) -> list[QAItem]:
        """``items`` with the RAG-mode teacher's top-k log-probabilities at each answer token (the frozen
        base reading the contexts' text), computed in batches with the LoRA off; ``progress(done, total)``
        after each batch. Only the answer positions go through the output layer: the (B, L, V) logits
        of ~1,000-token text prompts would be most of the memory. ``batch_size`` default: 1 on the CPU
        (measured on the reader mix, 264-1,024-token prompts: 515 tokens/s at 1 vs 331 at 4, whose
        padding to the longest prompt is wasted work), 8 on an accelerator."""
        import torch

        batch_size = batch_size or (1 if torch.device(self.device).type == "cpu" else 8)
        out = []
        self.model.eval()
        base = self.model.get_base_model()
        with self._teacher_weights() as reads_with_lora:
            for start in range(0, len(items), batch_size):
                part = items[start:start + batch_size]
                embeds, mask, labels = assemble([self.row(i, text=True) for i in part],
                                                dtype=self.model.get_input_embeddings().weight.dtype)
                lora = contextlib.nullcontext() if reads_with_lora else self.model.disable_adapter()
                with torch.no_grad(), lora, self._autocast():
                    hidden = base.model(inputs_embeds=embeds, attention_mask=mask, use_cache=False).last_hidden_state  # (B, L, d)
                    for row, item in enumerate(part):
                        scored = labels[row, 1:] != IGNORE  # (L-1,) positions that predict an answer token
                        logp = base.lm_head(hidden[row, :-1][scored]).float().log_softmax(-1)  # (n, V)
                        top = logp.topk(min(self.config.distill_top_k, logp.shape[-1]), dim=-1)
                        out.append(replace(item, teacher=(top.indices.to("cpu", torch.int32), top.values.to("cpu", torch.float16))))
                if progress:
                    progress(len(out), len(items))
        return out

    @contextlib.contextmanager
    def _teacher_weights(self) -> Iterator[bool]:
        """While the teacher reads: the ``distill_teacher`` adapter loaded beside the one being trained
        and made active (yields True), or nothing to load (yields False: the base decoder, LoRA off).
        The trained adapter is active again, and the teacher's weights gone, afterwards."""
        teacher = self.config.distill_teacher
        if not teacher:
            yield False
            return
        from model.loading import check_adapter

        check_adapter(teacher, self.model.get_base_model())
        self.model.load_adapter(teacher, adapter_name=TEACHER)
        try:
            self.model.set_adapter(TEACHER)
            yield True
        finally:
            self.model.set_adapter("default")  # makes the trained LoRA's parameters trainable again
            self.model.delete_adapter(TEACHER)

    def loss(self, items: list[QAItem]) -> tuple[torch.Tensor, int]:
        """(loss, answer tokens) of a batch: mean NLL per answer token, plus the distillation term when on."""
        total, _, n = self.losses(items)
        return total, n

    def losses(self, items: list[QAItem]) -> tuple[torch.Tensor, torch.Tensor | None, int]:
        """(total loss, distillation KL or None, answer tokens) of a batch."""
        embeds, mask, labels = assemble([self.row(i) for i in items], dtype=self.model.get_input_embeddings().weight.dtype)
        with self._autocast():
            logits = self.model(inputs_embeds=embeds, attention_mask=mask, use_cache=False).logits  # (B, L, V)
        nll, n, _ = token_scores(logits, labels)
        if self.config.distill_weight <= 0:
            return nll / n, None, n
        kl = distill_kl(logits, labels, [i.teacher for i in items])
        return nll / n + self.config.distill_weight * kl, kl, n

    def batch(self, step: int) -> list[QAItem]:
        """The examples of step ``step``: epochs over one seeded permutation per epoch."""
        size, n = self.config.batch_size, len(self.items)
        picked = []
        for k in range(step * size, (step + 1) * size):
            epoch, pos = divmod(k, n)
            order = list(range(n))
            random.Random(self.config.seed * 1000 + epoch).shuffle(order)
            picked.append(self.items[order[pos]])
        return picked

    def eval_loss(self, items: list[QAItem]) -> float:
        import torch

        self.model.eval()
        with torch.no_grad():
            return float(self.loss(items)[0])

    # ------------------------------------------------------------------------- training
    def train_step(self) -> dict[str, Any]:
        import torch

        started = time.perf_counter()
        self.model.train()
        loss, kl, n = self.losses(self.batch(self.step))
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.params, self.config.max_grad_norm)
        lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        self.tokens_seen += n
        self.elapsed += time.perf_counter() - started
        record = {"step": self.step, "loss": float(loss.detach()), "lr": lr, "grad_norm": float(grad_norm),
                  "answer_tokens_seen": self.tokens_seen, "tokens_seen": self.tokens_seen,
                  "elapsed_s": round(self.elapsed, 3)}
        if kl is not None:
            record["distill"] = float(kl.detach())
        ts.append_log(self.out, record)
        return record

    def run(self, *, on_step: Callable[[dict[str, Any]], None] | None = None) -> None:
        """Train to config.steps, saving every save_every steps and at the end."""
        ts.run_steps(self, self.config.steps, on_step)

    # ---------------------------------------------------------------------- checkpoints
    def save(self) -> Path:
        """Write the adapter (a peft folder) and the resume state into the output folder."""
        staged = ts.staging_dir(self.out)
        self.model.save_pretrained(str(staged))
        meta = {**self.meta, "base": self.decoder.name, "trained_steps": self.step, "examples": len(self.items),
                "examples_by_source": self.examples_by_source, "answer_tokens_seen": self.tokens_seen,
                "elapsed_s": round(self.elapsed, 1), "training": asdict(self.config)}
        (staged / META).write_text(json.dumps(meta, indent=2))
        ts.save_state(self, staged)
        ts.publish(self.out, staged)
        ts.plot_losses(self.out, keys=("loss",), what="adapter training")
        return self.out

    def restore(self) -> None:
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        weights = load_file(self.out / "adapter_model.safetensors", device=str(self.device))
        set_peft_model_state_dict(self.model, weights)
        ts.restore_state(self)


def distill_kl(logits: torch.Tensor, labels: torch.Tensor, teacher: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """Mean over answer tokens of sum_k p_t (log p_t - log q_s) on the teacher's top-k tokens.

    ``logits``: the student's (B, L, V); ``labels``: (B, L), answer tokens labelled; ``teacher``: per
    row, (ids (n, k), log-probs (n, k)) for its n answer tokens, in order.
    """
    import torch

    scored = labels[:, 1:] != IGNORE  # (B, L-1): positions that predict an answer token, row-major
    student = logits[:, :-1][scored].float().log_softmax(-1)  # (N, V), N = all rows' answer tokens
    ids = torch.cat([t[0] for t in teacher]).to(student.device, torch.long)  # (N, k)
    logp_t = torch.cat([t[1] for t in teacher]).to(student.device, torch.float32)  # (N, k)
    if ids.shape[0] != student.shape[0]:
        raise InvalidInputError(f"teacher targets for {ids.shape[0]} answer tokens, batch has {student.shape[0]}: "
                                "the examples changed since the teacher read them")
    p_t = logp_t.exp()
    return (p_t * (logp_t - student.gather(-1, ids))).sum(-1).mean()


def save_items(path: Path, items: list[QAItem]) -> None:
    import torch

    torch.save([{**{k: getattr(i, k) for k in ("question", "answer", "instruction", "source", "texts", "teacher")},
                 "contexts": [c.detach().to("cpu", torch.float16) for c in i.contexts]} for i in items], path)


def load_items(path: Path) -> list[QAItem]:
    import torch

    if not path.is_file():
        raise NotFoundError(f"{path} is missing: the run's examples cannot be replayed")
    return [QAItem(**row) for row in torch.load(path, map_location="cpu", weights_only=True)]
