"""Prompt assembly shared by every answering mode.

A prompt is a list of parts: text (tokenized piece by piece) and contexts, where a context is
either a chunk's token ids (plain RAG, full context) or its summary vectors (LLoCO). Both kinds
become rows of one ``inputs_embeds`` matrix, so the modes differ only in what stands for a chunk:
with an identity compressor (summary vectors = the chunk's token embeddings) lloco and rag
prompts are the same tensor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from model.loading import Decoder

_MARK = "\x00CTX{}\x00"  # placeholder that no tokenizer merges with its neighbours' text
DEFAULT_INSTRUCTION = (
    "Answer the question using only the context below. Answer concisely; "
    "if the context does not contain the answer, say that it does not."
)
SYSTEM_PROMPT = "You are a careful assistant that answers questions about documents."


@dataclass(frozen=True)
class Context:
    """What stands for one chunk in the prompt: token ids or summary vectors (kappa, d)."""

    token_ids: list[int] | None = None
    vectors: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if (self.token_ids is None) == (self.vectors is None):
            raise ValueError("a Context holds exactly one of token_ids or vectors")

    def __len__(self) -> int:
        return len(self.token_ids) if self.token_ids is not None else int(self.vectors.shape[0])


Part = str | Context


def build_prompt(tokenizer, *, question: str, contexts: list[Context], instruction: str = DEFAULT_INSTRUCTION,
                 separator: str = "\n\n") -> list[Part]:
    """Chat-formatted prompt: instruction, the contexts in the given order, then the question."""
    marks = separator.join(_MARK.format(i) for i in range(len(contexts)))
    user = f"{instruction}\n\nContext:\n{marks}\n\nQuestion: {question}" if contexts else f"{question}"
    if getattr(tokenizer, "chat_template", None):
        messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    else:
        text = f"{SYSTEM_PROMPT}\n\n{user}\nAnswer:"
    parts: list[Part] = []
    for i, context in enumerate(contexts):
        before, text = text.split(_MARK.format(i), 1)
        if before:
            parts.append(before)
        parts.append(context)
    if text:
        parts.append(text)
    return parts


def embed_prompt(decoder: Decoder, parts: list[Part]) -> torch.Tensor:
    """The prompt as input embeddings: (1, n_prompt_tokens, d), in the decoder's dtype."""
    import torch

    rows = []
    for part in parts:
        if isinstance(part, str):
            rows.append(decoder.embed_ids(decoder.encode(part)))
        elif part.token_ids is not None:
            rows.append(decoder.embed_ids(part.token_ids))
        else:
            rows.append(part.vectors.to(decoder.device, decoder.dtype))
    return torch.cat(rows).unsqueeze(0)
