"""llama.cpp (through llama-cpp-python) as a bench/cpu_inference.py candidate: a transformers model
converted to GGUF by llama.cpp's own script, read with input embeddings for the prompt (its batch API
takes them: lloco's prompts are embeddings) and token ids for the answer, greedy.

llama-cpp-python is the optional extra the product's llama.cpp answer engine uses (``make llamacpp``
compiles it); the converter is not a project dependency: ``convert_hf_to_gguf.py`` comes with
llama.cpp's source (the sdist's ``vendor/llama.cpp``), given to the bench as ``--llama-cpp-convert``.
(The product writes its GGUFs itself: model/gguf_export.py.)
"""

from __future__ import annotations

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
    max_new_tokens=..., min_new_tokens=...)`` -> (1, n) ids, as bench/cpu_inference.py calls a model:
    the product's llama.cpp context (model.llamacpp.LlamaCppContext), a prompt in one llama_decode."""

    def __init__(self, gguf: Path, *, threads: int, n_ctx: int = 4096, eos: set[int]) -> None:
        from model.llamacpp import LlamaCppContext, import_llama_cpp

        self.context = LlamaCppContext(import_llama_cpp(), gguf, threads=threads, n_ctx=n_ctx, batch_rows=n_ctx)
        self.eos = eos

    def __call__(self, *, inputs_embeds, **_):
        return self.context.stepper(inputs_embeds, None)(None)

    def generate(self, *, inputs_embeds, max_new_tokens: int, min_new_tokens: int = 0, **_):
        from bench.onnx_graph import greedy

        step = self.context.stepper(inputs_embeds, None)
        return greedy(step(None), step, eos=self.eos, max_new_tokens=max_new_tokens, min_new_tokens=min_new_tokens)


def convert_model(model, tokenizer, folder: Path, *, script: Path, outtype: str) -> Path:
    """A transformers model in memory (e.g. with a reader merged in) saved with its tokenizer, then converted."""
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return convert(folder, folder / f"model-{outtype}.gguf", script=script, outtype=outtype)
