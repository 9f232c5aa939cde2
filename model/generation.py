"""Greedy generation from ``inputs_embeds``, streamed token by token."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from model.loading import Decoder


def stream_generate(decoder: Decoder, inputs_embeds: torch.Tensor, *, max_new_tokens: int,
                    adapter: str | Path | None = None) -> Iterator[str]:
    """Yield the answer's text pieces as they are decoded.

    ``inputs_embeds``: (1, n_prompt, d). Greedy, so an answer is reproducible. The decoder is held
    (lock + adapter selection) until the generator is exhausted or closed.
    """
    import torch
    from transformers import TextIteratorStreamer

    streamer = TextIteratorStreamer(decoder.tokenizer, skip_prompt=False, skip_special_tokens=True, timeout=600)
    with decoder.session(adapter) as model:
        mask = torch.ones(inputs_embeds.shape[:2], dtype=torch.long, device=inputs_embeds.device)
        errors: list[BaseException] = []

        def run() -> None:
            try:
                # inference_mode is thread-local: the generation thread needs its own
                with torch.inference_mode():
                    model.generate(inputs_embeds=inputs_embeds, attention_mask=mask, max_new_tokens=max_new_tokens,
                                   do_sample=False, streamer=streamer, pad_token_id=decoder.tokenizer.pad_token_id)
            except BaseException as exc:  # surfaced in the caller's thread below
                errors.append(exc)
                streamer.end()

        worker = threading.Thread(target=run, name="lloco-generate", daemon=True)
        worker.start()
        try:
            for piece in streamer:
                if piece:
                    yield piece
        finally:
            worker.join()
        if errors:
            raise errors[0]


def prompt_logits(decoder: Decoder, inputs_embeds: torch.Tensor, *, adapter: str | Path | None = None) -> torch.Tensor:
    """Next-token logits at every prompt position: (1, n_prompt, vocab), float32."""
    import torch

    with decoder.session(adapter) as model:
        mask = torch.ones(inputs_embeds.shape[:2], dtype=torch.long, device=inputs_embeds.device)
        return model(inputs_embeds=inputs_embeds, attention_mask=mask).logits.float()
