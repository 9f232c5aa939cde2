"""LoRA adapters per collection: used for lloco questions, hot-swapped safely between threads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from model.generation import prompt_logits
from model.errors import InvalidInputError, NotFoundError
from model.loading import load_decoder
from tests.fakes import tiny_lora, tiny_llama_folder


def _adapter(folder, tiny_folder, seed):
    return tiny_lora(folder, tiny_folder, seed)


@pytest.fixture
def decoder(tiny_folder):
    """A private decoder: adapters loaded here must not leak into other tests."""
    return load_decoder(tiny_folder, name="tiny", device="cpu", dtype=torch.float32)


def test_hot_swap_under_concurrent_questions(decoder, tiny_folder, tmp_path):
    a = _adapter(tmp_path / "a", tiny_folder, 1)
    b = _adapter(tmp_path / "b", tiny_folder, 2)
    embeds = decoder.embed_ids(list(range(3, 40))).unsqueeze(0).detach()
    expected = {name: prompt_logits(decoder, embeds, adapter=path) for name, path in (("a", a), ("b", b), ("none", None))}
    assert not torch.allclose(expected["a"], expected["b"]) and not torch.allclose(expected["a"], expected["none"])
    jobs = [("a", a), ("b", b), ("none", None)] * 8

    def run(job):
        name, path = job
        return name, prompt_logits(decoder, embeds, adapter=path)

    with ThreadPoolExecutor(max_workers=6) as pool:
        for name, logits in pool.map(run, jobs):
            torch.testing.assert_close(logits, expected[name])
    assert len(decoder.adapters) == 2  # loaded once each, then switched


def _lamps(service, decoder, tmp_path):
    """A service on the private ``decoder`` with collection "c" holding one short text."""
    from app.core.service import LlocoService
    from tests.fakes import HashEmbedder

    svc = LlocoService(service.settings, decoder=decoder, embedder=HashEmbedder())
    doc = tmp_path / "d.txt"
    doc.write_text("Lamps and lighthouses. " * 20)
    svc.create_collection("c")
    svc.ingest("c", [doc])
    return svc


def test_collection_adapter_is_used_in_lloco_mode_only(service, tiny_folder, tmp_path, decoder):
    svc = _lamps(service, decoder, tmp_path)
    adapter = _adapter(tmp_path / "ad", tiny_folder, 3)
    plain = svc.ask("c", "lamps?", mode="lloco").read()
    assert plain.adapter is None
    svc.set_adapter("c", adapter)
    assert svc.get_collection("c").adapter_path == str(adapter.resolve())
    tuned = svc.ask("c", "lamps?", mode="lloco").read()
    assert tuned.adapter == str(adapter.resolve())
    assert svc.ask("c", "lamps?", mode="rag").read().adapter is None  # the baseline stays the base decoder
    svc.set_adapter("c", None)
    assert svc.ask("c", "lamps?", mode="lloco").read().text == plain.text


def test_rag_reader_mode_reads_text_with_the_reader_adapter(service, tiny_folder, tmp_path, decoder):
    svc = _lamps(service, decoder, tmp_path)
    reader = _adapter(tmp_path / "reader", tiny_folder, 4)
    svc.set_adapter("c", reader)
    rag, with_reader = (svc.answerer("c", mode).prepare("lamps?", top_k=2) for mode in ("rag", "rag+reader"))
    torch.testing.assert_close(rag.embeds, with_reader.embeds)  # the same prompt: the chunks' text
    assert svc.ask("c", "lamps?", mode="rag+reader").read().adapter == str(reader.resolve())  # lloco's reader
    other = _adapter(tmp_path / "text-reader", tiny_folder, 5)
    svc.settings.rag_adapter = str(other)
    answer = svc.ask("c", "lamps?", mode="rag+reader").read()
    assert answer.mode == "rag+reader" and answer.adapter == str(other)
    assert svc.ask("c", "lamps?", mode="rag").read().adapter is None


def test_an_adapter_that_cannot_load_is_refused_on_attach_and_nothing_changes(service, tiny_folder, tmp_path):
    """Issue 12, bug 9: a corrupt or foreign adapter folder used to be accepted, then failed every
    lloco question with a SafetensorError traceback."""
    service.create_collection("c")
    good = _adapter(tmp_path / "good", tiny_folder, 1)
    service.set_adapter("c", good)
    corrupt = _adapter(tmp_path / "corrupt", tiny_folder, 2)
    (corrupt / "adapter_model.safetensors").write_bytes(b"\x00garbage" * 100)
    foreign = tiny_lora(tmp_path / "foreign", tiny_llama_folder(tmp_path / "wide", hidden=96), 3)
    bad_json = _adapter(tmp_path / "bad-json", tiny_folder, 4)
    (bad_json / "adapter_config.json").write_text("{not json")
    no_weights = _adapter(tmp_path / "no-weights", tiny_folder, 5)
    (no_weights / "adapter_model.safetensors").unlink()
    cases = [(corrupt, InvalidInputError, "damaged"), (foreign, InvalidInputError, "trained for another model"),
             (bad_json, InvalidInputError, "not readable JSON"), (no_weights, InvalidInputError, "no adapter_model"),
             (tmp_path / "wide", NotFoundError, "not a LoRA adapter folder"),  # a model folder, not an adapter
             (tmp_path, InvalidInputError, "holds lloco's state")]  # the folder holding the home (issue 26)
    for folder, error, message in cases:
        with pytest.raises(error, match=message):
            service.set_adapter("c", folder)
        assert service.get_collection("c").adapter_path == str(good.resolve())  # the attached one stays
