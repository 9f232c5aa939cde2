"""llama.cpp as the answer engine (the ``answer_engine`` setting), through llama-cpp-python.

The decoder — or, for a reader adapter, a copy with the LoRA merged in — is written once as a GGUF
file (:mod:`model.gguf_export`, cached on disk by content) and loaded into a llama.cpp context
(LRU, ``kept`` at a time). A prompt goes in as input embeddings through llama.cpp's batch API (lloco
prompts are summary vectors, not tokens), the answer's tokens go in as ids, and the logits come back
to :mod:`model.generation`'s one greedy loop, so both engines share the stopping, the repetition
penalty and the streaming. Only answering runs here; compression, option scoring and training stay
on transformers.

llama-cpp-python is an optional extra compiled from source (``make llamacpp``); without it the
engine is refused with the install command.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from model.errors import ModelNotAvailableError
from model.gguf_export import GgufType, write_gguf

if TYPE_CHECKING:
    import torch

    from model.loading import Decoder

INSTALL = ("the llama-cpp answer engine needs llama-cpp-python (compiled from source, a few minutes): "
           "`make llamacpp`, or set answer_engine=transformers")
BATCH_ROWS = 512  # prompt rows per llama_decode call (its compute buffer grows with the square of this)
Step = Callable[[int | None], "torch.Tensor"]  # None: prefill the prompt; a token id: one step -> logits (vocab,)


def import_llama_cpp() -> Any:
    """The ``llama_cpp`` module, or a clear error saying how to install it."""
    try:
        import llama_cpp
    except ImportError as exc:
        raise ModelNotAvailableError(INSTALL) from exc
    return llama_cpp


_DIGESTS: dict[tuple[str, int, int], str] = {}  # (path, size, mtime) -> sha256: a 7B decoder is hashed once


def _digest(paths: list[Path]) -> str:
    """A content hash of files (a changed adapter or decoder is a new GGUF)."""
    h = hashlib.sha256()
    for path in sorted(paths):
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        if key not in _DIGESTS:
            one = hashlib.sha256()
            with path.open("rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    one.update(block)
            _DIGESTS[key] = one.hexdigest()
        h.update(path.name.encode() + _DIGESTS[key].encode())
    return h.hexdigest()


class LlamaCppEngine:
    """GGUF files per (decoder, adapter), loaded llama.cpp contexts, and greedy steps on them."""

    def __init__(self, *, cache_dir: Path, gguf_type: GgufType = "f32", threads: int | None = None,
                 n_ctx: int = 8192, kept: int = 2) -> None:
        import torch

        self.lib = import_llama_cpp()
        self.cache_dir, self.gguf_type, self.kept = Path(cache_dir), gguf_type, kept
        self.threads = threads or torch.get_num_threads()
        self.n_ctx = n_ctx
        self.contexts: OrderedDict[str | None, LlamaCppContext] = OrderedDict()  # adapter folder (None: base) -> context
        self._lock = threading.Lock()

    def gguf_path(self, decoder: Decoder, adapter: str | Path | None) -> Path:
        """Where the GGUF of ``decoder`` with ``adapter`` merged in lives (written on first use)."""
        files = [p for p in Path(decoder.folder).iterdir() if p.suffix in (".safetensors", ".json") and p.is_file()]
        key = _digest(files)
        if adapter is not None:
            key += _digest([p for p in Path(adapter).iterdir() if p.name.startswith("adapter_") and p.is_file()])
        name = f"{Path(decoder.folder).name}-{hashlib.sha256(key.encode()).hexdigest()[:16]}-{self.gguf_type}.gguf"
        return self.cache_dir / name

    def export(self, decoder: Decoder, adapter: str | Path | None) -> Path:
        """The GGUF file for ``decoder`` + ``adapter``, written if missing (float32 weights merged first)."""
        import torch
        from transformers import AutoModelForCausalLM

        from model.loading import merged_copy

        path = self.gguf_path(decoder, adapter)
        if not path.is_file():
            if adapter is None:
                model = AutoModelForCausalLM.from_pretrained(decoder.folder, dtype=torch.float32)
            else:
                model = merged_copy(Path(decoder.folder), Path(adapter), dtype=torch.float32, device="cpu")
            write_gguf(model, path, gguf_type=self.gguf_type)
            del model
        return path

    def _context(self, decoder: Decoder, adapter: str | Path | None) -> LlamaCppContext:
        key = None if adapter is None else str(Path(adapter).resolve())
        with self._lock:
            if key in self.contexts:
                self.contexts.move_to_end(key)
                return self.contexts[key]
            while len(self.contexts) >= self.kept:
                self.contexts.popitem(last=False)[1].close()
            context = LlamaCppContext(self.lib, self.export(decoder, key), threads=self.threads,
                                      n_ctx=min(self.n_ctx, decoder.max_context))
            self.contexts[key] = context
            return context

    @contextlib.contextmanager
    def steps(self, decoder: Decoder, inputs_embeds: torch.Tensor, *, adapter: str | Path | None,
              prefix: tuple[str, int] | None) -> Iterator[Step]:
        """A step function for one answer (held under the decoder's lock, as a transformers session is)."""
        with decoder.lock:
            context = self._context(decoder, adapter)
            yield context.stepper(inputs_embeds, prefix)

    def close(self) -> None:
        with self._lock:
            while self.contexts:
                self.contexts.popitem(last=False)[1].close()


class LlamaCppContext:
    """One GGUF loaded into a llama.cpp context, with batches for embeddings and for one token (also
    what bench/llamacpp_runner.py times). ``batch_rows``: prompt rows per llama_decode call."""

    def __init__(self, lib: Any, gguf: Path, *, threads: int, n_ctx: int, batch_rows: int = BATCH_ROWS) -> None:
        self.lib, self.n_ctx, self.batch_rows = lib, n_ctx, batch_rows
        self.llm = lib.Llama(model_path=str(gguf), n_ctx=n_ctx, n_batch=batch_rows, n_ubatch=batch_rows,
                             n_threads=threads, n_threads_batch=threads, verbose=False)
        self.ctx = self.llm._ctx.ctx
        self.n_vocab = int(self.llm.n_vocab())  # our GGUFs: the vocabulary size, as dummy tokens
        self.n_embd = int(lib.llama_n_embd(self.llm._model.model))
        self.rows = lib.llama_batch_init(batch_rows, self.n_embd, 1)  # prompt rows as embeddings
        self.token = lib.llama_batch_init(1, 0, 1)  # one answer token as an id
        self.kept_prefix: tuple[str, int] | None = None  # the prompt start whose KV the context holds

    def close(self) -> None:
        self.lib.llama_batch_free(self.rows)
        self.lib.llama_batch_free(self.token)
        self.llm.close()

    def _logits(self) -> torch.Tensor:
        import numpy as np
        import torch

        pointer = self.lib.llama_get_logits_ith(self.ctx, -1)
        return torch.from_numpy(np.ctypeslib.as_array(pointer, shape=(self.n_vocab,)).copy())  # (vocab,)

    def _prefill(self, rows, start: int, *, last_logits: bool) -> None:  # noqa: ANN001
        """Decode prompt rows (n, d) float32 at positions start.., ``batch_rows`` at a time."""
        import numpy as np

        n = rows.shape[0]
        for offset in range(0, n, self.batch_rows):
            part = np.ascontiguousarray(rows[offset: offset + self.batch_rows], dtype=np.float32)  # (m, d)
            m = part.shape[0]
            ctypes.memmove(self.rows.embd, part.ctypes.data, part.nbytes)
            self.rows.n_tokens = m
            for i in range(m):
                self.rows.pos[i] = start + offset + i
                self.rows.n_seq_id[i] = 1
                self.rows.seq_id[i][0] = 0
                self.rows.logits[i] = int(last_logits and offset + i == n - 1)
            if self.lib.llama_decode(self.ctx, self.rows) != 0:
                raise RuntimeError("llama.cpp could not decode the prompt")

    def stepper(self, inputs_embeds: torch.Tensor, prefix: tuple[str, int] | None) -> Step:
        """``step(None)`` prefills ``inputs_embeds`` (1, n, d) and returns the next-token logits;
        ``step(token)`` feeds one answer token. With ``prefix`` (text, rows; a usable one:
        model.generation.usable_prefix), the prompt's first rows are prefilled as a batch of their own
        and kept for the next prompt that starts with the same text."""
        rows = inputs_embeds[0].detach().float().cpu().numpy()  # (n, d)
        if rows.shape[0] > self.n_ctx:
            raise RuntimeError(f"a prompt of {rows.shape[0]} rows exceeds llama.cpp's context of {self.n_ctx}")
        position = [0]

        def step(token: int | None) -> torch.Tensor:
            if token is None:
                memory = self.lib.llama_get_memory(self.ctx)
                start = 0
                if prefix is not None and self.kept_prefix == prefix:
                    self.lib.llama_memory_seq_rm(memory, 0, prefix[1], -1)  # keep the start, drop the last answer
                    start = prefix[1]
                else:
                    self.lib.llama_memory_clear(memory, True)
                    self.kept_prefix = None
                    if prefix is not None:
                        self._prefill(rows[: prefix[1]], 0, last_logits=False)
                        self.kept_prefix, start = prefix, prefix[1]
                self._prefill(rows[start:], start, last_logits=True)
                position[0] = rows.shape[0]
            else:
                if position[0] >= self.n_ctx:
                    raise RuntimeError(f"the answer ran past llama.cpp's context of {self.n_ctx}")
                b = self.token
                b.n_tokens, b.token[0], b.pos[0], b.n_seq_id[0], b.seq_id[0][0], b.logits[0] = 1, token, position[0], 1, 0, 1
                if self.lib.llama_decode(self.ctx, b) != 0:
                    raise RuntimeError("llama.cpp could not decode an answer token")
                position[0] += 1
            return self._logits()

        return step
