"""Fast stand-ins for unit tests: a tiny random Llama with a tiny BPE tokenizer, a hashing
embedder, and PDFs made on the fly. Never what a feature is judged on (see the integration tests)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CHAT_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
CORPUS = (
    "The lighthouse keeper lit the lamp every evening. Honeybees dance to tell their sisters where flowers are. "
    "Tides rise and fall twice a day because of the moon. Coffee was first drunk in Yemen. "
    "Question: what is the answer? Context: documents, pages, chunks and citations. 0123456789 ,.;:!?()-'\""
)


def tiny_tokenizer(folder: Path):
    """A byte-level BPE tokenizer (vocab ~400) with ChatML special tokens and a chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([CORPUS] * 20, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   bos_token="<|endoftext|>", additional_special_tokens=["<|im_start|>"])
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(folder)
    return fast


def tiny_llama_folder(folder: Path, *, seed: int = 0, hidden: int = 64, layers: int = 2) -> Path:
    """Save a randomly initialised Llama (and its tokenizer) to ``folder``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = tiny_tokenizer(folder)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=2048, tie_word_embeddings=True,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=tokenizer.bos_token_id)
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


class HashEmbedder:
    """Bag of hashed words, L2-normalized: shared words mean a higher score."""

    name = "hash-64"
    dim = 64

    def embed(self, texts: list[str], *, batch_size: int = 32) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z0-9]+", text.lower()):
                out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-9)


def make_pdf(path: Path, pages: list[str]) -> Path:
    """A real PDF (fpdf2, core font) with one page per string."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 6, text)
    pdf.output(str(path))
    return path


def tiny_lora(folder: Path, tiny_folder: Path, seed: int = 0) -> Path:
    """A real (random, non-zero) LoRA adapter for the tiny Llama in ``tiny_folder``, saved to ``folder``."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    base = AutoModelForCausalLM.from_pretrained(tiny_folder, dtype=torch.float32)
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=32, target_modules=["q_proj", "v_proj", "o_proj"],
                                            init_lora_weights=False))
    model.save_pretrained(folder)
    return folder


@dataclass(frozen=True)
class TinyDeriver:
    """What a Ray worker of the tests derives documents with (``app.core.ray_ingest``): the tiny Llama in
    ``folder``, its untrained compressor and the hashing embedder, as the ``service`` fixture has them.
    ``kill_marker``: the first worker to compress creates this file and kills its own process mid-document
    (Ray restarts it; the file stops the second attempt from dying too)."""

    folder: str
    chunk_tokens: int
    chunk_overlap: int
    kappa: int
    kill_marker: str | None = None

    def __call__(self):
        import os
        import signal

        import torch

        from indexing.pipeline import Deriver
        from model.compressor import load_compressor
        from model.loading import load_decoder

        decoder = load_decoder(self.folder, name=self.folder, device="cpu", dtype=torch.float32)
        compressor = load_compressor(None, decoder, kappa=self.kappa)
        if self.kill_marker:
            marker, compress = Path(self.kill_marker), compressor.compress

            def dying(chunks, **kw):
                if not marker.exists():
                    marker.write_text(str(os.getpid()))
                    os.kill(os.getpid(), signal.SIGKILL)
                return compress(chunks, **kw)

            compressor.compress = dying  # this worker's compressor only
        return Deriver(embedder=HashEmbedder(), compressor=compressor, encode=decoder.encode,
                       chunk_tokens=self.chunk_tokens, chunk_overlap=self.chunk_overlap, max_bytes=200 * 2**20)


def fixed_confidence(bias: float):
    """A confidence model (app.core.confidence) that gives every answer sigmoid(bias), whatever it says."""
    from app.core.confidence import FEATURES, ConfidenceModel

    return ConfidenceModel((0.0,) * len(FEATURES), bias, (0.0,) * len(FEATURES), (1.0,) * len(FEATURES))


def text_collection(service, folder, name: str, text: str):
    """``service`` with a collection ``name`` holding one text file of ``text`` (written in ``folder``)."""
    doc = folder / f"{name}.txt"
    doc.write_text(text)
    service.create_collection(name)
    service.ingest(name, [doc])
    return service
