"""llama.cpp (through llama-cpp-python) as a bench/cpu_inference.py candidate: a transformers model
converted to GGUF by llama.cpp's own script, read with input embeddings for the prompt (its batch API
takes them: lloco's prompts are embeddings) and token ids for the answer, greedy.

Neither llama-cpp-python nor the converter is a project dependency: PyPI ships llama-cpp-python as
source only (``pip install llama-cpp-python`` compiles llama.cpp, ~10 minutes on 2 cores), and
``convert_hf_to_gguf.py`` comes with llama.cpp's source (the sdist's ``vendor/llama.cpp``), given to
the bench as ``--llama-cpp-convert``.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from pathlib import Path


def convert(hf_folder: Path, out: Path, *, script: Path, outtype: str) -> Path:
    """``hf_folder`` (a transformers model + tokenizer) as a GGUF file of ``outtype`` (f32, f16, bf16, q8_0)."""
    env = os.environ | {"PYTHONPATH": str(script.parent / "gguf-py"), "HF_HUB_OFFLINE": "1"}  # its own gguf package
    done = subprocess.run([sys.executable, str(script), str(hf_folder), "--outfile", str(out), "--outtype", outtype],
                          capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"convert_hf_to_gguf failed: {done.stderr[-2000:]}")
    return out


class LlamaCppRunner:
    """``runner(inputs_embeds=...)`` (a prefill) and greedy ``runner.generate(inputs_embeds=...,
    max_new_tokens=..., min_new_tokens=...)`` -> (1, n) ids, as bench/cpu_inference.py calls a model."""

    def __init__(self, gguf: Path, *, threads: int, n_ctx: int = 4096, eos: set[int]) -> None:
        import llama_cpp

        self.lib = llama_cpp
        self.llm = llama_cpp.Llama(model_path=str(gguf), n_ctx=n_ctx, n_batch=n_ctx, n_ubatch=n_ctx, n_threads=threads,
                                   n_threads_batch=threads, verbose=False)
        self.ctx = self.llm._ctx.ctx
        self.n_embd = llama_cpp.llama_n_embd(self.llm._model.model)
        self.n_vocab = self.llm.n_vocab()
        self.eos = eos
        self.batch = llama_cpp.llama_batch_init(n_ctx, self.n_embd, 1)  # room for a prompt of embeddings
        self.tokens = llama_cpp.llama_batch_init(1, 0, 1)  # one token id a step

    def _logits(self, index: int):
        import numpy as np

        pointer = self.lib.llama_get_logits_ith(self.ctx, index)
        return np.ctypeslib.as_array(pointer, shape=(self.n_vocab,))

    def _prefill(self, inputs_embeds):
        import numpy as np

        self.lib.llama_memory_clear(self.lib.llama_get_memory(self.ctx), True)
        rows = np.ascontiguousarray(inputs_embeds[0].float().numpy(), dtype=np.float32)  # (n, d)
        n = rows.shape[0]
        ctypes.memmove(self.batch.embd, rows.ctypes.data, rows.nbytes)
        self.batch.n_tokens = n
        for i in range(n):
            self.batch.pos[i] = i
            self.batch.n_seq_id[i] = 1
            self.batch.seq_id[i][0] = 0
            self.batch.logits[i] = int(i == n - 1)
        if self.lib.llama_decode(self.ctx, self.batch) != 0:
            raise RuntimeError("llama_decode failed on the prompt")
        return n

    def __call__(self, *, inputs_embeds, **_):
        self._prefill(inputs_embeds)
        return self._logits(-1)

    def generate(self, *, inputs_embeds, max_new_tokens: int, min_new_tokens: int = 0, **_):
        from bench.onnx_graph import greedy

        position = [self._prefill(inputs_embeds)]

        def step(token: int):
            b = self.tokens
            b.n_tokens, b.token[0], b.pos[0], b.n_seq_id[0], b.seq_id[0][0], b.logits[0] = 1, token, position[0], 1, 0, 1
            if self.lib.llama_decode(self.ctx, b) != 0:
                raise RuntimeError("llama_decode failed on a step")
            position[0] += 1
            return self._logits(-1)

        return greedy(self._logits(-1), step, eos=self.eos, max_new_tokens=max_new_tokens,
                      min_new_tokens=min_new_tokens)

def convert_model(model, tokenizer, folder: Path, *, script: Path, outtype: str) -> Path:
    """A transformers model in memory (e.g. with a reader merged in) saved with its tokenizer, then converted."""
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return convert(folder, folder / f"model-{outtype}.gguf", script=script, outtype=outtype)
