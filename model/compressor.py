"""AutoCompressor-style chunk compressor: a chunk's tokens followed by kappa learned summary-token
embeddings run through the base model; the final hidden states at those kappa positions are the
chunk's summary vectors, which live in the decoder's input-embedding space.

Checkpoint formats read here:
- lloco's own (``compressor.json`` + ``summary_embeddings.safetensors`` + optional ``lora/``, a
  peft LoRA merged into a private copy of the base model on load);
- an AutoCompressor Hugging Face folder (``config.json`` with ``summary_length`` and an
  ``embed_summary.weight`` tensor in its weights), e.g. AutoCompressor-Llama-2-7b-6k.
A lloco checkpoint may carry a learned output projection (``projection.weight`` (d, d) and
``projection.bias`` (d,)): the final hidden states are post-RMSNorm (norm ~50 on SmolLM2, vs ~3 for
token embeddings), so a linear map puts the summary vectors where the frozen decoder can read them.
Without one (AutoCompressor folders, untrained) the hidden states are used as they are.
A lloco checkpoint's ``pooling`` (compressor.json) says where its kappa vectors come from: ``tokens``
(the default; the summary-token positions above) or ``mean`` (local vectors: the chunk alone runs
through the model and its hidden states are averaged over kappa equal windows, one vector per
len/kappa tokens: 32 at 256-token chunks and kappa 8, REFRAG's 16-32; arXiv 2510.20797's
mean-pooling), so both fill the same (kappa, d) slots of a collection.
With no checkpoint the compressor is *untrained*: its summary embeddings are a fixed random draw,
so lloco mode runs end to end but its answers carry no information from the context.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from model.errors import InvalidInputError, ModelNotAvailableError, NotFoundError
from model.loading import Decoder, merged_copy

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

META_FILE = "compressor.json"
SUMMARY_FILE = "summary_embeddings.safetensors"
SUMMARY_KEY = "summary_embeddings"
PROJ_WEIGHT, PROJ_BIAS = "projection.weight", "projection.bias"
UNTRAINED_SEED = 0
Pooling = Literal["tokens", "mean"]
POOLINGS: tuple[Pooling, ...] = ("tokens", "mean")


@dataclass
class Compressor:
    """Turns chunks of token ids into (kappa, d) summary vectors."""

    runner: Decoder  # the model the chunks run through (the decoder itself, or a merged copy)
    summary_embeddings: torch.Tensor  # (kappa, d) learned summary-token input embeddings
    trained: bool
    ident: str  # recorded with each collection: vectors from different compressors don't mix
    projection: tuple[torch.Tensor, torch.Tensor] | None = None  # (d, d) weight, (d,) bias, or None
    pooling: Pooling = "tokens"  # summary-token positions, or means of kappa local windows

    @property
    def kappa(self) -> int:
        return self.summary_embeddings.shape[0]

    def compress(self, chunks: list[list[int]], *, batch_size: int = 8) -> list[torch.Tensor]:
        """Summary vectors of each chunk, in order: a list of (kappa, d) float16 CPU tensors."""
        import torch

        if not chunks:
            return []
        if any(not ids for ids in chunks):
            raise InvalidInputError("cannot compress an empty chunk")
        out: list[torch.Tensor | None] = [None] * len(chunks)
        for idx in length_batches(chunks, batch_size):
            vectors = self._compress_batch([chunks[i] for i in idx])  # (B, kappa, d)
            for row, i in enumerate(idx):
                out[i] = vectors[row].to("cpu", torch.float16)
        return out  # type: ignore[return-value]

    def _compress_batch(self, batch: list[list[int]]) -> torch.Tensor:
        kappa, longest = self.kappa, max(len(ids) for ids in batch)
        limit = self.runner.max_context - kappa
        if longest > limit:
            raise InvalidInputError(f"chunk of {longest} tokens is longer than the compressor's window ({limit})")
        with self.runner.session(None):
            inner = self.runner.base_model.get_decoder()
            summary = self.summary_embeddings.to(self.runner.device, self.runner.dtype)
            rows = [self.runner.embed_ids(ids) for ids in batch]  # each (len_i, d)
            return project(chunk_hidden_states(inner, rows, summary, pooling=self.pooling), self.projection)


def length_batches(chunks: list[list[int]], size: int) -> list[list[int]]:
    """Indices of ``chunks`` in batches of ``size``, sorted by length (similar lengths batch together:
    little padding): how :meth:`Compressor.compress` batches."""
    order = sorted(range(len(chunks)), key=lambda i: len(chunks[i]))
    return [order[start:start + size] for start in range(0, len(order), size)]


def project(hidden: torch.Tensor, projection: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
    """Summary vectors from the (B, kappa, d) hidden states: ``hidden @ W.T + b``, or as is without a projection."""
    if projection is None:
        return hidden
    weight, bias = projection
    return hidden @ weight.to(hidden.device, hidden.dtype).T + bias.to(hidden.device, hidden.dtype)


def left_padded_hidden_states(inner, rows: list[torch.Tensor]) -> torch.Tensor:
    """``inner``'s final hidden states over input-embedding rows of different lengths, left-padded
    into one batch (so every row ends at the last position): (B, longest, d)."""
    import torch

    longest = max(int(r.shape[0]) for r in rows)
    embeds = torch.stack([torch.cat([r.new_zeros(longest - r.shape[0], r.shape[1]), r]) for r in rows])  # (B, longest, d)
    mask = torch.tensor([[0] * (longest - int(r.shape[0])) + [1] * int(r.shape[0]) for r in rows], device=embeds.device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return inner(inputs_embeds=embeds, attention_mask=mask, position_ids=positions, use_cache=False).last_hidden_state


def summary_hidden_states(inner, token_embeds: list[torch.Tensor], summary: torch.Tensor) -> torch.Tensor:
    """The compressor's forward pass, shared by inference and training: (B, kappa, d) float32.

    ``inner``: the transformer body (``LlamaModel``-like, returns ``last_hidden_state``), with
    whatever LoRA is active; ``token_embeds``: one (len_i, d) input-embedding matrix per chunk;
    ``summary``: the (kappa, d) summary-token embeddings. Differentiable when called with grad.
    """
    import torch

    kappa, summary = summary.shape[0], summary.to(token_embeds[0].dtype)
    hidden = left_padded_hidden_states(inner, [torch.cat([embeds, summary]) for embeds in token_embeds])
    return hidden[:, -kappa:, :].float()  # (B, kappa, d): the summary positions end every row


def mean_pooled_hidden_states(inner, token_embeds: list[torch.Tensor], kappa: int) -> torch.Tensor:
    """Local vectors: each chunk's final hidden states averaged over kappa equal windows of its
    tokens (window i: tokens [i*n//kappa, (i+1)*n//kappa), at least one token, so a chunk shorter
    than kappa repeats tokens rather than averaging nothing): (B, kappa, d) float32. Same call
    shape as :func:`summary_hidden_states`; differentiable when called with grad."""
    import torch

    hidden = left_padded_hidden_states(inner, token_embeds)  # (B, longest, d)
    longest = hidden.shape[1]
    pool = torch.zeros(len(token_embeds), kappa, longest)
    for b, embeds in enumerate(token_embeds):
        n = int(embeds.shape[0])
        offset = longest - n  # the row's left padding
        for i in range(kappa):
            start = i * n // kappa
            end = max((i + 1) * n // kappa, start + 1)
            pool[b, i, offset + start:offset + end] = 1.0 / (end - start)
    return torch.bmm(pool.to(hidden.device), hidden.float())  # (B, kappa, longest) @ (B, longest, d)


def chunk_hidden_states(inner, token_embeds: list[torch.Tensor], summary: torch.Tensor, *,
                        pooling: Pooling) -> torch.Tensor:
    """The compressor's (B, kappa, d) float32 hidden states under ``pooling``, before the projection:
    what inference and training both call. ``summary`` (kappa, d) is read only for ``tokens``."""
    if pooling == "mean":
        return mean_pooled_hidden_states(inner, token_embeds, int(summary.shape[0]))
    return summary_hidden_states(inner, token_embeds, summary)


def untrained_summary_embeddings(decoder: Decoder, kappa: int) -> torch.Tensor:
    """A fixed random draw scaled like the token embeddings: (kappa, d)."""
    import torch

    table = decoder.base_model.get_input_embeddings().weight.detach()
    generator = torch.Generator().manual_seed(UNTRAINED_SEED)
    std = float(table.detach().float().std())
    return torch.randn(kappa, table.shape[1], generator=generator) * std


def load_compressor(source: str | None, decoder: Decoder, *, kappa: int) -> Compressor:
    """``source``: None/'untrained', a lloco checkpoint folder or an AutoCompressor folder."""
    if source in (None, "untrained"):
        log.warning("compressor is UNTRAINED: lloco-mode answers cannot use the context (train one with `lloco train compressor`)")
        emb = untrained_summary_embeddings(decoder, kappa)
        return Compressor(decoder, emb, trained=False, ident=compressor_ident(source, kappa=kappa))
    folder = _checkpoint_folder(source)
    if (folder / META_FILE).is_file():
        return _load_lloco(folder, decoder, kappa=kappa)
    return _load_autocompressor(folder, decoder, kappa=kappa)


def compressor_ident(source: str | None, *, kappa: int) -> str:
    """The ident :func:`load_compressor` gives ``source``, read from its files without loading any
    model (cheap enough to check a collection's vectors before anything is loaded)."""
    if source in (None, "untrained"):
        return f"untrained-s{UNTRAINED_SEED}-k{kappa}"
    folder = _checkpoint_folder(source)
    if (folder / META_FILE).is_file():
        return _lloco_ident(*_lloco_tensors(folder, kappa), kappa, pooling=_lloco_pooling(folder))
    return _autocompressor_ident(folder, _autocompressor_embedding(folder, kappa), kappa)


def _checkpoint_folder(source: str) -> Path:
    folder = Path(source).expanduser()
    if not (folder / META_FILE).is_file() and not (folder / "config.json").is_file():
        raise NotFoundError(f"compressor checkpoint {folder} not found (needs {META_FILE} or an AutoCompressor config.json)")
    return folder


def _digest(*tensors: torch.Tensor) -> str:
    sha = hashlib.sha256()
    for tensor in tensors:
        sha.update(tensor.float().numpy().tobytes())
    return sha.hexdigest()[:12]


def _take_kappa(emb: torch.Tensor, kappa: int, folder: Path) -> torch.Tensor:
    if kappa > emb.shape[0]:
        raise InvalidInputError(f"compressor {folder} has {emb.shape[0]} summary tokens; {kappa} were asked for")
    return emb[:kappa]


def _lloco_tensors(folder: Path, kappa: int) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]:
    """A lloco checkpoint's summary embeddings (kappa, d) and its projection ((d, d), (d,)) if any."""
    from safetensors.torch import load_file

    tensors = load_file(folder / SUMMARY_FILE)
    emb = _take_kappa(tensors[SUMMARY_KEY].float(), kappa, folder)
    projection = (tensors[PROJ_WEIGHT].float(), tensors[PROJ_BIAS].float()) if PROJ_WEIGHT in tensors else None
    return emb, projection


def _lloco_ident(emb: torch.Tensor, projection: tuple[torch.Tensor, torch.Tensor] | None, kappa: int, *,
                 pooling: Pooling) -> str:
    # from the weights only, so a copied or moved checkpoint keeps its collections usable; the
    # pooling is named only when it is not the summary tokens, so older idents stay as they were
    tag = "" if pooling == "tokens" else f"{pooling}-"
    return f"lloco-{tag}{_digest(emb, *(projection or ()))}-k{kappa}"


def _lloco_pooling(folder: Path) -> Pooling:
    pooling = json.loads((folder / META_FILE).read_text()).get("pooling", "tokens")
    if pooling not in POOLINGS:
        raise ModelNotAvailableError(f"compressor {folder} has pooling {pooling!r}; this lloco knows {', '.join(POOLINGS)}")
    return pooling


def _load_lloco(folder: Path, decoder: Decoder, *, kappa: int) -> Compressor:
    meta = json.loads((folder / META_FILE).read_text())
    if meta.get("hidden_size") not in (None, decoder.hidden_size):
        raise ModelNotAvailableError(f"compressor {folder} was trained for hidden size {meta['hidden_size']}, decoder has {decoder.hidden_size}")
    emb, projection = _lloco_tensors(folder, kappa)
    pooling = _lloco_pooling(folder)
    runner = decoder
    lora = folder / "lora"
    if lora.is_dir():
        runner = _merged_copy(decoder, lora)
    return Compressor(runner, emb, trained=True, ident=_lloco_ident(emb, projection, kappa, pooling=pooling),
                      projection=projection, pooling=pooling)


def _merged_copy(decoder: Decoder, lora: Path) -> Decoder:
    """A private copy of the base model with the compressor's LoRA merged in (AutoCompressor style)."""
    merged = merged_copy(decoder.folder, lora, dtype=decoder.dtype, device=decoder.device)
    return Decoder(model=merged, tokenizer=decoder.tokenizer, name=f"{decoder.name}+compressor", folder=decoder.folder,
                   device=decoder.device, dtype=decoder.dtype)


def _autocompressor_embedding(folder: Path, kappa: int) -> torch.Tensor:
    """The (kappa, d) summary embeddings of an AutoCompressor folder (read lazily from its shards)."""
    from safetensors import safe_open

    for shard in sorted(folder.glob("*.safetensors")):
        with safe_open(str(shard), framework="pt") as fh:
            key = next((k for k in fh.keys() if k.endswith("embed_summary.weight")), None)
            if key:
                return _take_kappa(fh.get_tensor(key).float(), kappa, folder)
    raise ModelNotAvailableError(f"{folder} has no embed_summary.weight tensor in its safetensors files: not an AutoCompressor")


def _autocompressor_ident(folder: Path, emb: torch.Tensor, kappa: int) -> str:
    return f"{folder.name}-{_digest(emb)}-k{kappa}"


def _load_autocompressor(folder: Path, decoder: Decoder, *, kappa: int) -> Compressor:
    from transformers import AutoModelForCausalLM

    emb = _autocompressor_embedding(folder, kappa)
    if folder.resolve() == decoder.folder.resolve():
        runner = decoder
    else:
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=decoder.dtype).to(decoder.device).eval()
        runner = Decoder(model=model, tokenizer=decoder.tokenizer, name=folder.name, folder=folder,
                         device=decoder.device, dtype=decoder.dtype)
    return Compressor(runner, emb, trained=True, ident=_autocompressor_ident(folder, emb, kappa))


def save_compressor(folder: Path, summary_embeddings: torch.Tensor, *, base: str, hidden_size: int,
                    projection: tuple[torch.Tensor, torch.Tensor] | None = None, pooling: Pooling = "tokens",
                    extra: dict | None = None) -> None:
    """Write a lloco checkpoint (the LoRA, if any, is saved by the trainer into ``folder/lora``).
    ``summary_embeddings`` (kappa, d) are written whatever the pooling: they fix kappa and the ident."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    tensors = {SUMMARY_KEY: summary_embeddings}
    if projection is not None:
        tensors |= {PROJ_WEIGHT: projection[0], PROJ_BIAS: projection[1]}
    save_file({k: v.detach().float().cpu().contiguous() for k, v in tensors.items()}, folder / SUMMARY_FILE)
    meta = {"base": base, "hidden_size": hidden_size, "kappa": int(summary_embeddings.shape[0]), "pooling": pooling,
            **(extra or {})}
    (folder / META_FILE).write_text(json.dumps(meta, indent=2))
