"""Questions the decoder cannot take (issue 12, bug 7): a pasted document as a "question" is refused
by length, and a prompt that would not fit the decoder's window (question + retrieved chunks +
the answer) is refused before generating, with what to change; nothing is stored either way."""

from __future__ import annotations

import pytest

from app.config import MAX_QUESTION_CHARS
from model.errors import InvalidInputError


@pytest.fixture
def big(service, pdf_factory):
    service.create_collection("big")
    pages = [" ".join(f"Line {p}.{i}: the keeper of lighthouse {p} logged {i * 7} ships." for i in range(60))
             for p in range(12)]
    service.ingest("big", [pdf_factory("log.pdf", pages)])
    assert service.get_collection("big").n_chunks > 60
    return service


def test_a_question_longer_than_the_limit_is_refused(big):
    chat = big.start_chat("big")
    with pytest.raises(InvalidInputError, match=f"too long .* at most {MAX_QUESTION_CHARS:,}"):
        big.ask("big", "why? " * 2000, mode="rag")
    # at the limit the length is accepted; on the tiny model's 2,048-token window the prompt is then too long
    with pytest.raises(InvalidInputError, match="exceed the decoder's window"):
        big.ask("big", "why? " * (MAX_QUESTION_CHARS // 5 - 1), mode="rag", top_k=1)
    assert big.chat_messages(chat.id) == []


@pytest.mark.parametrize("mode", ["rag", "lloco", "lloco-pure"])
def test_a_prompt_past_the_decoder_window_is_refused_with_what_to_change(big, mode):
    window = big.decoder.max_context  # 2048 for the tiny model
    if mode == "rag":
        with pytest.raises(InvalidInputError, match=f"exceed the decoder's window of {window} tokens: .*top-k"):
            big.ask("big", "How many ships were logged?", mode=mode, top_k=100)
    else:  # 100 chunks as kappa vectors (+ a few sentences) fit: lloco's point
        answer = big.ask("big", "How many ships were logged?", mode=mode, top_k=100).read()
        assert answer.prompt_tokens + big.settings.max_new_tokens <= window
    assert big.ask("big", "How many ships were logged?", mode=mode, top_k=4).read().prompt_tokens < window
