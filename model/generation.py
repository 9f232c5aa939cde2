"""Greedy generation from ``inputs_embeds``, streamed token by token."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from model.loading import Decoder


class GenerationStream:
    """Iterate for the answer's text pieces; ``n_tokens`` counts the generated token ids."""

    def __init__(self, decoder: Decoder, inputs_embeds: torch.Tensor, *, max_new_tokens: int,
                 adapter: str | Path | None) -> None:
        self.n_tokens = 0
        self._pieces = self._run(decoder, inputs_embeds, max_new_tokens, adapter)

    def __iter__(self) -> Iterator[str]:
        return self._pieces

    def _run(self, decoder: Decoder, inputs_embeds: torch.Tensor, max_new_tokens: int, adapter) -> Iterator[str]:
        import torch
        from transformers import TextIteratorStreamer

        stream = self

        class Counting(TextIteratorStreamer):
            def put(self, value: torch.Tensor) -> None:
                if not (self.skip_prompt and self.next_tokens_are_prompt):
                    stream.n_tokens += int(value.numel())
                super().put(value)

        streamer = Counting(decoder.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600)
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


def stream_generate(decoder: Decoder, inputs_embeds: torch.Tensor, *, max_new_tokens: int,
                    adapter: str | Path | None = None) -> GenerationStream:
    """Greedy generation from ``inputs_embeds`` (1, n_prompt, d), streamed as text pieces.

    Greedy, so an answer is reproducible. The decoder is held (lock + adapter selection) until
    the stream is exhausted or closed.
    """
    return GenerationStream(decoder, inputs_embeds, max_new_tokens=max_new_tokens, adapter=adapter)


def prompt_logits(decoder: Decoder, inputs_embeds: torch.Tensor, *, adapter: str | Path | None = None) -> torch.Tensor:
    """Next-token logits at every prompt position: (1, n_prompt, vocab), float32."""
    import torch

    with decoder.session(adapter) as model:
        mask = torch.ones(inputs_embeds.shape[:2], dtype=torch.long, device=inputs_embeds.device)
        return model(inputs_embeds=inputs_embeds, attention_mask=mask).logits.float()
