"""The folders of a budgeted GPU run (:mod:`model.budget_train`): its data folder, everything as token
ids, so the run needs no corpus files, no app code and no tokenizing beyond the decoder's own
tokenizer; and the limits of its output folder (what comes back from the device machine).

Written here by ``bench/pack_budget_data.py`` (which reads the corpus and builds the reader mix with
``app/``), read on the device by :func:`read_pack`. Two files:

- ``pack.json``: the settings the data was cut with (kappa, chunk_tokens, expand_tokens, expand_share),
  the tokenizer's fingerprint, the corpus documents (source, id), the held-out pairs' spec and the
  reader examples' texts (question, answer, instruction, source);
- ``tokens.npz`` (compressed numpy arrays, uint16 when the vocabulary fits): each ragged list as a
  flat array plus offsets: the training documents' token ids (``corpus``), held-out (A, B) pairs
  (``heldout_a``, ``heldout_b``), the reader examples' distinct context windows (``windows``), each
  example's window indices (``example_windows``) and, per (example, window), the token ids of the
  expansion sentences lloco mode puts after that window's vectors (``sentences``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from model.errors import InvalidInputError, LlocoError, NotFoundError
from model.segment_pairs import Pair, TokenDoc

if TYPE_CHECKING:
    import torch

    from model.train_adapter import QAItem

FORMAT = 1
META_FILE = "pack.json"
TOKENS_FILE = "tokens.npz"
RAGGED = ("corpus", "heldout_a", "heldout_b", "windows", "example_windows", "sentences")
MAX_FILE_BYTES = 16 << 20  # what comes back from the device machine, per file
MAX_FILES = 8  # ... and in all


class OutputTooLargeError(LlocoError):
    """The output folder would not come back from the device (too many or too large files)."""


@dataclass(frozen=True)
class ReaderExample:
    """A reader example before compression: its contexts are windows (indices into ``Pack.windows``)."""

    question: str
    answer: str
    instruction: str
    source: str
    windows: list[int]
    sentences: list[list[int]]  # per window, the token ids of its expansion sentences ([] for none)


@dataclass
class Pack:
    meta: dict[str, Any]  # settings, tokenizer fingerprint, provenance (see the module docstring)
    docs: list[TokenDoc]  # the compressor's training documents
    heldout: list[Pair]  # held-out (A, B) pairs for the end-of-run evaluation
    windows: list[list[int]]  # the reader examples' distinct context windows
    examples: list[ReaderExample]

    @property
    def kappa(self) -> int:
        return int(self.meta["kappa"])


def tokenizer_fingerprint(tokenizer) -> str:
    """A short hash of the vocabulary: data packed with one tokenizer is refused with another."""
    vocab = sorted(tokenizer.get_vocab().items())
    return hashlib.sha1(json.dumps(vocab).encode("utf-8")).hexdigest()[:12]


def _flat(rows: Sequence[Sequence[int]], dtype: type) -> tuple[np.ndarray, np.ndarray]:
    """(all rows concatenated, offsets (n + 1,) int64)."""
    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    flat = np.concatenate([np.asarray(r, dtype=dtype) for r in rows]) if rows else np.zeros(0, dtype=dtype)
    return flat.astype(dtype), offsets


def _rows(arrays: Any, name: str) -> list[np.ndarray]:
    flat, offsets = arrays[name], arrays[name + "_offsets"]
    return [flat[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]


def write_pack(folder: Path, pack: Pack) -> dict[str, int]:
    """Write ``pack`` into ``folder`` (created); returns each file's size in bytes."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = int(pack.meta["vocab_size"])
    ids = np.uint16 if vocab <= np.iinfo(np.uint16).max + 1 else np.int32
    ragged = {"corpus": [d.ids for d in pack.docs], "heldout_a": [p.a for p in pack.heldout],
              "heldout_b": [p.b for p in pack.heldout], "windows": pack.windows,
              "example_windows": [e.windows for e in pack.examples],
              "sentences": [s for e in pack.examples for s in e.sentences]}
    arrays = {}
    for name, rows in ragged.items():
        arrays[name], arrays[name + "_offsets"] = _flat(rows, np.int32 if name == "example_windows" else ids)
    np.savez_compressed(folder / TOKENS_FILE, **arrays)
    meta = {**pack.meta, "format": FORMAT,
            "corpus_documents": [{"source": d.source, "doc_id": d.doc_id} for d in pack.docs],
            "heldout_sources": [p.source for p in pack.heldout],
            "examples": [{k: getattr(e, k) for k in ("question", "answer", "instruction", "source")}
                         for e in pack.examples]}
    (folder / META_FILE).write_text(json.dumps(meta), encoding="utf-8")
    return {name: (folder / name).stat().st_size for name in (META_FILE, TOKENS_FILE)}


def read_pack(folder: Path) -> Pack:
    """The data folder written by :func:`write_pack`; a clear error when it is missing or not one."""
    folder = Path(folder)
    hint = "make it with `.venv/bin/python bench/pack_budget_data.py --out DIR` on the machine with the data"
    if not folder.is_dir():
        raise NotFoundError(f"--data {folder} is not a folder ({hint})")
    missing = [n for n in (META_FILE, TOKENS_FILE) if not (folder / n).is_file()]
    if missing:
        raise InvalidInputError(f"--data {folder} is not a packed data folder: {', '.join(missing)} missing ({hint})")
    try:
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        arrays = dict(np.load(folder / TOKENS_FILE, allow_pickle=False))
    except (ValueError, OSError) as exc:
        raise InvalidInputError(f"--data {folder}: unreadable ({exc}); pack it again ({hint})") from None
    if meta.get("format") != FORMAT or any(n not in arrays or n + "_offsets" not in arrays for n in RAGGED):
        raise InvalidInputError(f"--data {folder}: format {meta.get('format')!r}, this code reads {FORMAT} ({hint})")
    docs = [TokenDoc(d["source"], d["doc_id"], ids.astype(np.int32), False)
            for d, ids in zip(meta.pop("corpus_documents"), _rows(arrays, "corpus"), strict=True)]
    heldout = [Pair(source, a.tolist(), b.tolist()) for source, a, b in
               zip(meta.pop("heldout_sources"), _rows(arrays, "heldout_a"), _rows(arrays, "heldout_b"), strict=True)]
    sentences = iter(_rows(arrays, "sentences"))
    examples = [ReaderExample(**text, windows=w.tolist(), sentences=[next(sentences).tolist() for _ in w])
                for text, w in zip(meta.pop("examples"), _rows(arrays, "example_windows"), strict=True)]
    return Pack(meta, docs, heldout, [w.tolist() for w in _rows(arrays, "windows")], examples)


def reader_items(pack: Pack, vectors: list[torch.Tensor], embed: Callable[[list[int]], torch.Tensor]) -> list[QAItem]:
    """The reader's training examples: ``vectors[i]`` (kappa, d) are window i's summary vectors, and
    each window is followed by its expansion sentences' input-embedding rows (``embed``), as in
    :func:`app.training.data.compress_examples`."""
    from model.train_adapter import QAItem, window_contexts

    return [QAItem(e.question, e.answer, e.instruction, window_contexts([vectors[w] for w in e.windows], e.sentences, embed),
                   e.source) for e in pack.examples]


# ------------------------------------------------------------------------ the output folder

def check_outputs(out: Path) -> dict[str, int]:
    """Bytes of every file under ``out``; refuses more than MAX_FILES files or any over MAX_FILE_BYTES."""
    files = {str(p.relative_to(out)): p.stat().st_size for p in sorted(out.rglob("*")) if p.is_file()}
    if len(files) > MAX_FILES:
        raise OutputTooLargeError(f"{out} holds {len(files)} files, more than the {MAX_FILES} that come back: "
                                  + ", ".join(files))
    big = [f"{name} ({size / 2**20:.1f} MiB)" for name, size in files.items() if size > MAX_FILE_BYTES]
    if big:
        raise OutputTooLargeError(f"files over {MAX_FILE_BYTES >> 20} MiB would not come back: {', '.join(big)}")
    return files


def publish(source: Path, target: Path, names: tuple[str, ...]) -> None:
    """Copy the inference files ``names`` of a checkpoint in ``source`` into ``target`` (each atomically)."""
    for name in names:
        dst = target / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(dst.name + ".partial")
        shutil.copyfile(source / name, tmp)
        os.replace(tmp, dst)
