"""Merged readers (Decoder.merge_adapters, the merge_reader setting): an adapter read through a copy
of the model with it merged in gives the peft path's logits and answers, copies are kept per adapter
up to the limit, a missing adapter is a clear error."""

from __future__ import annotations

import pytest
import torch

from app.config import Settings
from model.errors import NotFoundError
from model.generation import prompt_logits, stream_generate
from model.loading import load_decoder
from tests.fakes import tiny_lora


@pytest.fixture
def decoders(tiny_folder):
    """Private decoders (adapters loaded here must not leak into other tests): peft and merged."""
    return (load_decoder(tiny_folder, name="tiny", device="cpu", dtype=torch.float32),
            load_decoder(tiny_folder, name="tiny", device="cpu", dtype=torch.float32, merge_adapters=1))


def test_merged_reader_gives_the_peft_logits_and_answers(decoders, tiny_folder, tmp_path):
    peft, merged = decoders
    adapter = tiny_lora(tmp_path / "a", tiny_folder, 1)
    embeds = peft.embed_ids(list(range(3, 40))).unsqueeze(0).detach()  # (1, 37, d)
    with_peft = prompt_logits(peft, embeds, adapter=adapter)
    with_merged = prompt_logits(merged, embeds, adapter=adapter)
    torch.testing.assert_close(with_merged, with_peft, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(with_merged, prompt_logits(merged, embeds), atol=1e-3)  # the adapter matters
    assert not hasattr(merged.model, "peft_config")  # no LoRA injected into the served model
    answers = ["".join(stream_generate(d, embeds, max_new_tokens=6, adapter=adapter)) for d in (peft, merged)]
    assert answers[0] == answers[1]


def test_merged_copies_are_kept_per_adapter_up_to_the_limit(decoders, tiny_folder, tmp_path):
    _, merged = decoders
    a, b = tiny_lora(tmp_path / "a", tiny_folder, 1), tiny_lora(tmp_path / "b", tiny_folder, 2)
    embeds = merged.embed_ids(list(range(3, 20))).unsqueeze(0).detach()
    first = prompt_logits(merged, embeds, adapter=a)
    copy_a = merged.merged[str(a.resolve())]
    prompt_logits(merged, embeds, adapter=a)
    assert merged.merged[str(a.resolve())] is copy_a  # reused, not merged again
    prompt_logits(merged, embeds, adapter=b)
    assert list(merged.merged) == [str(b.resolve())]  # limit 1: a's copy dropped
    torch.testing.assert_close(prompt_logits(merged, embeds, adapter=a), first)  # merged again, same logits
    merged.merge_adapters = 2
    prompt_logits(merged, embeds, adapter=b)
    assert set(merged.merged) == {str(a.resolve()), str(b.resolve())}


def test_missing_adapter_and_the_setting(decoders, tmp_path):
    _, merged = decoders
    embeds = merged.embed_ids([3, 4, 5]).unsqueeze(0)
    with pytest.raises(NotFoundError, match="adapter_config.json"):
        prompt_logits(merged, embeds, adapter=tmp_path)
    assert Settings().merge_reader == 0 and Settings(merge_reader=2).merge_reader == 2
