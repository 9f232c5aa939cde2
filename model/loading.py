"""Load a decoder (causal LM + tokenizer) once, and hot-swap LoRA adapters on it thread-safely."""

from __future__ import annotations

import contextlib
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from model.errors import InvalidInputError, ModelNotAvailableError, NotFoundError

# peft's PeftModel reads ``model.is_gradient_checkpointing``, which transformers 5.x deprecates with a
# FutureWarning: printed on every CLI call that loads an adapter, nothing an analyst can act on (issue 27).
warnings.filterwarnings("ignore", message=r"`is_gradient_checkpointing` is deprecated", category=FutureWarning)

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


def encode_text(tokenizer, text: str) -> list[int]:
    """Token ids of ``text`` with no special tokens added (for code that has a tokenizer but no model)."""
    return tokenizer(text, add_special_tokens=False)["input_ids"]


@dataclass
class Decoder:
    """A loaded causal LM, its tokenizer and the LoRA adapters loaded onto it.

    ``model`` is the transformers model, or a ``peft.PeftModel`` around it once an adapter has
    been loaded. All forward passes go through :meth:`session`, which holds the lock and selects
    the adapter, so concurrent questions on different collections never see each other's LoRA.
    """

    model: Any
    tokenizer: PreTrainedTokenizerBase
    name: str
    folder: Path
    device: str
    dtype: torch.dtype
    load_seconds: float = 0.0
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    adapters: dict[str, str] = field(default_factory=dict)  # adapter name -> folder
    # the fixed start of prompts (template, system prompt, instruction) prefilled once per adapter:
    # (adapter folder or None, prefix text) -> its KV cache; see model.generation.prefilled
    prefixes: OrderedDict = field(default_factory=OrderedDict, repr=False)
    # > 0: an adapter is read through a copy of the model with it merged in, this many copies kept
    # (least recently used dropped): no per-call LoRA modules (lloco answers 1.2-1.4x faster on two of
    # three dev sets in bf16, docs/RESULTS.md §12) for a copy's memory. 0: peft switches the adapters
    # on the one model.
    merge_adapters: int = 0
    merged: OrderedDict = field(default_factory=OrderedDict, repr=False)  # adapter folder -> merged model
    # what answers are generated with: None = transformers on ``model`` (model.generation.TorchSteps),
    # else an engine with the same ``steps`` method (model.llamacpp.LlamaCppEngine; the answer_engine setting)
    engine: Any = field(default=None, repr=False)

    @property
    def hidden_size(self) -> int:
        return self.base_model.config.hidden_size

    @property
    def base_model(self) -> PreTrainedModel:
        """The transformers model under any peft wrapper."""
        return self.model.get_base_model() if hasattr(self.model, "peft_config") else self.model

    @property
    def max_context(self) -> int:
        return int(getattr(self.base_model.config, "max_position_embeddings", 2048))

    def embed_ids(self, ids: list[int]) -> torch.Tensor:
        """Input embeddings of token ids: (n, d)."""
        import torch

        table = self.base_model.get_input_embeddings()
        return table(torch.tensor(ids, dtype=torch.long, device=self.device))

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` with no special tokens added."""
        return encode_text(self.tokenizer, text)

    def _adapter_name(self, folder: str) -> str:
        for name, path in self.adapters.items():
            if path == folder:
                return name
        from peft import PeftModel

        path = Path(folder)
        if not (path / "adapter_config.json").is_file():
            raise NotFoundError(f"LoRA adapter folder {path} has no adapter_config.json")
        name = f"a{len(self.adapters)}"
        if hasattr(self.model, "peft_config"):
            self.model.load_adapter(str(path), adapter_name=name)
        else:
            self.model = PeftModel.from_pretrained(self.model, str(path), adapter_name=name)
        self.model.eval()
        self.adapters[name] = folder
        return name

    @contextlib.contextmanager
    def session(self, adapter: str | Path | None = None) -> Iterator[Any]:
        """Hold the model for one forward/generation, with ``adapter`` (a LoRA folder) or none.

        Yields the model to call. Adapters load once and are switched, not reloaded (with
        ``merge_adapters``, the adapter's merged copy is the model yielded).
        """
        import torch

        with self.lock, torch.inference_mode():
            if adapter is None:
                ctx = self.model.disable_adapter() if hasattr(self.model, "peft_config") else contextlib.nullcontext()
                with ctx:
                    yield self.model
                return
            folder = str(Path(adapter).resolve())
            if self.merge_adapters:
                yield self._merged(folder)
                return
            name = self._adapter_name(folder)
            if self.model.active_adapter != name:  # peft's switch walks every module: ~13 ms on SmolLM2
                self.model.set_adapter(name)
            yield self.model

    def _merged(self, folder: str) -> Any:
        """A copy of the plain base model with the adapter at ``folder`` merged in (kept; LRU)."""
        if folder in self.merged:
            self.merged.move_to_end(folder)
            return self.merged[folder]
        if not (Path(folder) / "adapter_config.json").is_file():
            raise NotFoundError(f"LoRA adapter folder {folder} has no adapter_config.json")
        while len(self.merged) >= self.merge_adapters:  # free the oldest copy before loading the next
            self.merged.popitem(last=False)
        self.merged[folder] = merged_copy(self.folder, Path(folder), dtype=self.dtype, device=self.device)
        return self.merged[folder]


def merged_copy(model_folder: Path, lora: Path, *, dtype: torch.dtype, device: str) -> PreTrainedModel:
    """The model of ``model_folder`` loaded afresh (no adapter injected) with the LoRA at ``lora``
    merged into its weights, for inference."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(model_folder, dtype=dtype)
    return flat_output_head(PeftModel.from_pretrained(base, str(lora)).merge_and_unload().to(device).eval())


def flat_output_head(model: PreTrainedModel) -> PreTrainedModel:
    """``model`` with its output head computing on 2-D rows, returned (changed in place; weights and
    state dict untouched).

    Why: torch's matmul of a 3-D batch-1 input by a frozen (requires_grad=False, as peft leaves it)
    bfloat16 weight goes through bmm with a copy of the whole weight: SmolLM2's 49152 x 576 head on
    a prompt's last row took 76 ms instead of 1.8 ms as a 2-D matmul — half of lloco's first token.
    The logits are bit for bit the same."""
    import types

    import torch

    head = model.get_output_embeddings()
    if isinstance(head, torch.nn.Linear) and "forward" not in vars(head):
        def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., d) -> (..., vocab)
            return torch.nn.functional.linear(x.reshape(-1, x.shape[-1]), self.weight, self.bias).reshape(*x.shape[:-1], -1)

        head.forward = types.MethodType(forward, head)
    return model


def check_adapter(folder: str | Path, base_model: Any) -> Path:
    """``folder`` resolved, if it holds a LoRA adapter that loads onto ``base_model``: a readable
    ``adapter_config.json`` and ``adapter_model.safetensors`` whose every LoRA matrix fits the module
    it adapts. Checked from the files' headers, without touching the model that serves questions."""
    import json

    from safetensors import safe_open

    path = Path(folder).expanduser().resolve()
    config = path / "adapter_config.json"
    if not config.is_file():
        raise NotFoundError(f"{path} is not a LoRA adapter folder (no adapter_config.json)")
    try:
        json.loads(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InvalidInputError(f"{config} is not readable JSON: {exc}") from None
    weights = path / "adapter_model.safetensors"
    if not weights.is_file():
        raise InvalidInputError(f"{path} has no adapter_model.safetensors (the LoRA weights)")
    modules = dict(base_model.named_modules())
    try:
        with safe_open(str(weights), framework="pt") as f:
            shapes = {key: tuple(f.get_slice(key).get_shape()) for key in f.keys()}
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types for a damaged file
        raise InvalidInputError(f"{weights} is damaged: {type(exc).__name__}: {exc}") from None
    for key, shape in shapes.items():
        for part, dim in ((".lora_A.weight", 1), (".lora_B.weight", 0)):
            if not key.endswith(part):
                continue
            target = modules.get(key.removeprefix("base_model.model.").removesuffix(part))
            wanted = None if target is None else (target.in_features if dim == 1 else target.out_features)
            if wanted is None or len(shape) != 2 or shape[dim] != wanted:
                raise InvalidInputError(f"{path} was trained for another model: {key} {shape} does not fit this "
                                        "decoder")
    return path


def load_decoder(folder: Path, *, name: str, device: str, dtype: torch.dtype, tokenizer_folder: Path | None = None,
                 merge_adapters: int = 0) -> Decoder:
    """Load a Hugging Face causal LM folder for inference on ``device`` in ``dtype``
    (``merge_adapters``: see :attr:`Decoder.merge_adapters`)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.perf_counter()
    tok_source = tokenizer_folder or folder
    try:
        tokenizer = AutoTokenizer.from_pretrained(tok_source)
    except (OSError, ValueError) as exc:
        raise ModelNotAvailableError(f"no usable tokenizer in {tok_source}: {exc}; set LLOCO_TOKENIZER to a tokenizer folder") from exc
    try:
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
    except (OSError, ValueError) as exc:
        raise ModelNotAvailableError(f"cannot load a causal LM from {folder}: {exc}") from exc
    flat_output_head(model.to(device).eval())
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return Decoder(model=model, tokenizer=tokenizer, name=name, folder=folder, device=device, dtype=dtype,
                   load_seconds=time.perf_counter() - started, merge_adapters=merge_adapters)
