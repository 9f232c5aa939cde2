"""Greedy generation from ``inputs_embeds``, streamed token by token."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from model.loading import Decoder


# transformers 5.x warns on every forward that passes ``past_key_values`` (renamed ``cache``, dropped in
# 5.40, below which the project is pinned): one line per CLI call an analyst cannot act on (issue 27).
warnings.filterwarnings("ignore", message=r"`past_key_values` is deprecated", category=FutureWarning)
PREFIXES_KEPT = 16  # prefilled prompt starts kept per decoder (one per instruction and adapter in use)


def usable_prefix(prefix: tuple[str, int] | None, n_rows: int) -> tuple[str, int] | None:
    """``prefix`` (text, rows) if it covers part of a prompt of ``n_rows`` rows — at least one row,
    and not all of them (the last row's logits come from the answer's own prefill) — else None."""
    return prefix if prefix is not None and 0 < prefix[1] < n_rows else None


def prefilled(decoder: Decoder, model, inputs_embeds: torch.Tensor, prefix: tuple[str, int] | None,  # noqa: ANN001
              adapter: str | Path | None):
    """A copy of the KV cache of the prompt's first ``prefix[1]`` rows — the fixed text ``prefix[0]``
    (chat template, system prompt, instruction), the same for every question — computed once per
    adapter and kept on the decoder; None without a prefix. Inside :meth:`Decoder.session`. The copy
    is the generation's to extend; the logits are those of a full prefill (tested)."""
    import copy

    prefix = usable_prefix(prefix, int(inputs_embeds.shape[1]))
    if prefix is None:
        return None
    key = (str(adapter) if adapter else None, prefix[0])
    cache = decoder.prefixes.get(key)
    if cache is None:
        cache = model(inputs_embeds=inputs_embeds[:, : prefix[1]], use_cache=True).past_key_values
        decoder.prefixes[key] = cache
        while len(decoder.prefixes) > PREFIXES_KEPT:
            decoder.prefixes.popitem(last=False)
    decoder.prefixes.move_to_end(key)
    return copy.deepcopy(cache)


class GenerationStream:
    """Iterate for the answer's text pieces, one per generated token (a piece is held back only while
    it ends inside a multi-byte character); ``n_tokens`` counts the generated token ids (the end
    token included), ``first_token_at`` is the ``time.perf_counter()`` at which the first was chosen."""

    def __init__(self, decoder: Decoder, inputs_embeds: torch.Tensor, *, max_new_tokens: int,
                 adapter: str | Path | None, prefix: tuple[str, int] | None = None, no_repeat_ngram: int = 0,
                 may_end: Callable[[str], bool] | None = None,
                 allowed: Callable[[list[int]], set[int]] | None = None) -> None:
        self.no_repeat_ngram, self.may_end, self.allowed = no_repeat_ngram, may_end, allowed
        self.n_tokens = 0
        self.first_token_at: float | None = None
        self.token_ids: list[int] = []  # the answer's ids, without the end token
        # log p of each chosen id under the decoder's own distribution (before the repetition penalty
        # and the guards' bans), the end token included: the decoder's confidence (issue 23)
        self.token_logprobs: list[float] = []
        self.capped = False  # stopped by max_new_tokens, not by an end token
        self._pieces = self._run(decoder, inputs_embeds, max_new_tokens, adapter, prefix)

    def __iter__(self) -> Iterator[str]:
        return self._pieces

    def _run(self, decoder: Decoder, inputs_embeds: torch.Tensor, max_new_tokens: int, adapter,
             prefix: tuple[str, int] | None) -> Iterator[str]:
        """The pieces of :meth:`_generate`, run on a thread of its own: the decoder's lock, inference
        mode (thread-local) and every forward stay on one thread even when the consumer's ``next``
        calls come from different ones (a web server iterates a stream from its thread pool). A
        consumer that stops early stops the generation at its next token."""
        import queue
        import threading

        items: queue.SimpleQueue = queue.SimpleQueue()
        end, stop = object(), threading.Event()

        def work() -> None:
            try:
                for piece in self._generate(decoder, inputs_embeds, max_new_tokens, adapter, prefix):
                    if stop.is_set():
                        break
                    items.put(piece)
            except BaseException as exc:  # noqa: BLE001 - raised again in the consumer's thread
                items.put(exc)
            finally:
                items.put(end)

        worker = threading.Thread(target=work, name="lloco-generate", daemon=True)
        worker.start()
        try:
            while (item := items.get()) is not end:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            worker.join()

    def _generate(self, decoder: Decoder, inputs_embeds: torch.Tensor, max_new_tokens: int, adapter,
                  prefix: tuple[str, int] | None) -> Iterator[str]:
        import time

        import torch

        # Our own greedy loop rather than ``model.generate``: generate's per-call set-up costs a
        # 135M decoder ~60 ms before the first token on a CPU (docs/RESULTS.md §14), and its text
        # streamer holds pieces back to the end of a word. Greedy ids are generate's (tested).
        pieces = TextPieces(decoder.tokenizer)
        stop = end_token_ids(decoder.base_model, decoder.tokenizer)
        penalty = repetition_penalty(decoder.base_model)
        engine = decoder.engine if decoder.engine is not None else TorchSteps()
        prefix = usable_prefix(prefix, int(inputs_embeds.shape[1]))
        with engine.steps(decoder, inputs_embeds, adapter=adapter, prefix=prefix) as step:
            logits = step(None)  # (vocab,) after the prompt
            self.capped = True
            for _ in range(max_new_tokens):
                raw = logits
                if penalty != 1.0 and self.token_ids:
                    logits = _penalised(logits, self.token_ids, penalty)
                banned = repeated_ngram_ends(self.token_ids, self.no_repeat_ngram)
                if self.may_end is not None and not self.may_end(pieces.text):
                    banned |= stop  # the answer may not end here (a number cut at its decimal point)
                if banned:
                    logits = logits.clone()
                    logits[sorted(banned)] = float("-inf")
                if self.allowed is not None:  # only these ids may come next (the end too, once one was chosen)
                    keep = self.allowed(self.token_ids) | (stop - banned if self.token_ids else set())
                    if keep:
                        mask = torch.full_like(logits, float("-inf"))
                        mask[sorted(keep)] = 0.0
                        logits = logits + mask
                token = int(logits.argmax())
                if self.first_token_at is None:
                    self.first_token_at = time.perf_counter()
                self.n_tokens += 1
                self.token_logprobs.append(float(raw[token] - raw.logsumexp(-1)))
                if token in stop:
                    self.capped = False
                    break
                self.token_ids.append(token)
                if piece := pieces.push(token):
                    yield piece
                logits = step(token)
            if piece := pieces.flush():
                yield piece


class TorchSteps:
    """The transformers engine: prefill and one-token steps on the decoder's model (a session: its
    lock and adapter), the prompt's fixed start from the prefix cache when given."""

    @contextlib.contextmanager
    def steps(self, decoder: Decoder, inputs_embeds: torch.Tensor, *, adapter: str | Path | None,
              prefix: tuple[str, int] | None) -> Iterator[Callable[[int | None], torch.Tensor]]:
        with decoder.session(adapter) as model:
            state = {"cache": prefilled(decoder, model, inputs_embeds, prefix, adapter)}

            def step(token: int | None) -> torch.Tensor:
                cache = state["cache"]
                if token is not None:
                    rows = decoder.embed_ids([token]).to(inputs_embeds.dtype).unsqueeze(0)  # (1, 1, d)
                else:
                    rows = inputs_embeds if cache is None else inputs_embeds[:, cache.get_seq_length():]  # (1, n, d)
                out = model(inputs_embeds=rows, past_key_values=cache, use_cache=True, logits_to_keep=1)
                state["cache"] = out.past_key_values
                return out.logits[0, -1].float()  # (vocab,)

            yield step


class TextPieces:
    """Incremental detokenization: each pushed token id yields the text it adds to the answer, held
    back while the answer ends inside a multi-byte character (byte-level tokens split them)."""

    def __init__(self, tokenizer) -> None:  # noqa: ANN001
        self._tokenizer, self._ids, self._emitted = tokenizer, [], 0
        self.text = ""  # the answer so far, decoded

    def push(self, token: int) -> str:
        self._ids.append(token)
        self.text = text = self._tokenizer.decode(self._ids, skip_special_tokens=True)
        if len(text) <= self._emitted or text.endswith("\ufffd"):
            return ""
        piece, self._emitted = text[self._emitted:], len(text)
        return piece

    def flush(self) -> str:
        """What is still held back (an answer cut inside a character keeps its replacement mark)."""
        text = self._tokenizer.decode(self._ids, skip_special_tokens=True)
        piece, self._emitted = text[self._emitted:], len(text)
        return piece


def end_token_ids(model, tokenizer=None) -> set[int]:  # noqa: ANN001
    """The ids that end an answer: the model's generation config's (an int or a list), else the
    tokenizer's end-of-sequence token."""
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if configured is None and tokenizer is not None:
        configured = tokenizer.eos_token_id
    if configured is None:
        return set()
    return {int(configured)} if isinstance(configured, int) else {int(i) for i in configured}


def repeated_ngram_ends(ids: list[int], n: int) -> set[int]:
    """The tokens that would repeat an ``n``-gram already in ``ids`` (transformers' no_repeat_ngram_size:
    the standard guard against a greedy decoder's loops, "PepsiCo, Inc. and Subsidiaries:" until the
    length cap); none for ``n`` < 1."""
    if n < 1:
        return set()
    tail = tuple(ids[len(ids) - n + 1:])  # the last n-1 ids: an n-gram starting with them is about to repeat
    return {ids[i + n - 1] for i in range(len(ids) - n + 1) if tuple(ids[i:i + n - 1]) == tail}


def repetition_penalty(model) -> float:  # noqa: ANN001
    """The generation config's repetition penalty (1.0 = none), which greedy ``generate`` applies."""
    value = getattr(getattr(model, "generation_config", None), "repetition_penalty", None)
    return float(value) if value else 1.0


def _penalised(logits: torch.Tensor, ids: list[int], penalty: float) -> torch.Tensor:
    """transformers' repetition penalty over the generated ids (the prompt is embeddings, not ids):
    a seen token's logit is divided by ``penalty`` when positive, multiplied when negative."""
    import torch

    seen = torch.tensor(sorted(set(ids)), dtype=torch.long, device=logits.device)
    scores = logits[seen]
    logits = logits.clone()
    logits[seen] = torch.where(scores < 0, scores * penalty, scores / penalty)
    return logits


def stream_generate(decoder: Decoder, inputs_embeds: torch.Tensor, *, max_new_tokens: int,
                    adapter: str | Path | None = None, prefix: tuple[str, int] | None = None,
                    no_repeat_ngram: int = 0, may_end: Callable[[str], bool] | None = None,
                    allowed: Callable[[list[int]], set[int]] | None = None) -> GenerationStream:
    """Greedy generation from ``inputs_embeds`` (1, n_prompt, d), streamed as text pieces.

    Greedy, so an answer is reproducible. The decoder is held (lock + adapter selection) until
    the stream is exhausted or closed. ``prefix``: (text, rows) — the prompt's first ``rows`` rows
    are that fixed text, whose KV cache is computed once and reused (:func:`prefilled`).
    ``no_repeat_ngram``: no n-gram of generated tokens twice (0: off). ``may_end(text so far)``: False
    where the answer may not end yet (its end tokens are banned for that step). ``allowed(ids so far)``:
    the only ids that may come next (the end tokens are added once the answer has a token; an empty
    set leaves the step free): copy-constrained decoding, when the caller allows only continuations of
    its sources' spans.
    """
    return GenerationStream(decoder, inputs_embeds, max_new_tokens=max_new_tokens, adapter=adapter, prefix=prefix,
                            no_repeat_ngram=no_repeat_ngram, may_end=may_end, allowed=allowed)


def complete(decoder: Decoder, instruction: str, *, max_new_tokens: int = 48) -> str:
    """The decoder's greedy answer to a plain instruction (chat-formatted, no context, no adapter)."""
    from model.prompts import build_prompt, embed_prompt

    parts = build_prompt(decoder.tokenizer, question=instruction, contexts=[])
    return "".join(stream_generate(decoder, embed_prompt(decoder, parts), max_new_tokens=max_new_tokens))


def prompt_logits(decoder: Decoder, inputs_embeds: torch.Tensor, *, adapter: str | Path | None = None) -> torch.Tensor:
    """Next-token logits at every prompt position: (1, n_prompt, vocab), float32."""
    import torch

    with decoder.session(adapter) as model:
        mask = torch.ones(inputs_embeds.shape[:2], dtype=torch.long, device=inputs_embeds.device)
        return model(inputs_embeds=inputs_embeds, attention_mask=mask).logits.float()


def continuation_logprob(decoder: Decoder, prompt_embeds: torch.Tensor, continuation_ids: list[int], *,
                         adapter: str | Path | None = None) -> float:
    """Sum of log p(continuation_ids | prompt): one forward pass over prompt + continuation.

    ``prompt_embeds``: (1, n_prompt, d). An empty continuation scores 0.0.
    """
    import torch

    if not continuation_ids:
        return 0.0
    n = int(prompt_embeds.shape[1])
    ids = torch.tensor(continuation_ids, dtype=torch.long, device=prompt_embeds.device)
    with torch.inference_mode():
        rows = decoder.embed_ids(continuation_ids).to(prompt_embeds.dtype).unsqueeze(0)
        logits = prompt_logits(decoder, torch.cat([prompt_embeds, rows], dim=1), adapter=adapter)
    logp = torch.log_softmax(logits[0, n - 1: n - 1 + len(continuation_ids)], dim=-1)  # (m, vocab)
    return float(logp.gather(1, ids.unsqueeze(1)).sum())


def continuation_logprobs(decoder: Decoder, prompt_embeds: torch.Tensor, continuations: list[list[int]], *,
                          adapter: str | Path | None = None) -> list[float]:
    """:func:`continuation_logprob` for several continuations of one prompt.

    The prompt runs once; each continuation reuses its KV cache, which is cropped back to the
    prompt afterwards, so scoring four multiple-choice options costs about one prompt pass.
    """
    import torch

    n = int(prompt_embeds.shape[1])
    scores: list[float] = []
    with decoder.session(adapter) as model:
        mask = torch.ones((1, n), dtype=torch.long, device=prompt_embeds.device)
        out = model(inputs_embeds=prompt_embeds, attention_mask=mask, use_cache=True)
        cache, first = out.past_key_values, torch.log_softmax(out.logits[0, -1].float(), dim=-1)  # (vocab,)
        for ids in continuations:
            if not ids:
                scores.append(0.0)
                continue
            total = float(first[ids[0]])
            if len(ids) > 1:
                rows = decoder.embed_ids(ids[:-1]).to(prompt_embeds.dtype).unsqueeze(0)
                mask = torch.ones((1, n + len(ids) - 1), dtype=torch.long, device=prompt_embeds.device)
                logits = model(inputs_embeds=rows, attention_mask=mask, past_key_values=cache, use_cache=True).logits
                logp = torch.log_softmax(logits[0].float(), dim=-1)  # (m - 1, vocab)
                target = torch.tensor(ids[1:], dtype=torch.long, device=logp.device).unsqueeze(1)
                total += float(logp.gather(1, target).sum())
                cache.crop(-(len(ids) - 1))  # a negative value removes that many tokens, in every 5.x API
                if cache.get_seq_length() != n:
                    raise RuntimeError(f"KV cache holds {cache.get_seq_length()} positions after cropping, expected {n}")
            scores.append(total)
    return scores
