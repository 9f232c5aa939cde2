"""The prefix KV cache (issue 14, item 1): the prompt's fixed start (template, system prompt,
instruction) is prefilled once per adapter and reused; the logits and the answers are those of a
full prefill, with and without a LoRA adapter."""

from __future__ import annotations

import torch

from model.generation import prefilled


def _prompt(decoder, n_prefix=20, n_rest=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 200, (n_prefix + n_rest,), generator=g).tolist()
    return decoder.embed_ids(ids).unsqueeze(0).detach(), n_prefix


def test_logits_after_the_cached_prefix_equal_a_full_prefill(tiny_decoder):
    tiny_decoder.prefixes.clear()  # the session's shared decoder: other tests' questions filled it
    embeds, n = _prompt(tiny_decoder)
    with tiny_decoder.session(None) as model:
        full = model(inputs_embeds=embeds).logits[0, n:]  # (n_rest, V)
        cache = prefilled(tiny_decoder, model, embeds, ("the fixed start", n), None)
        rest = model(inputs_embeds=embeds[:, n:], past_key_values=cache,
                     cache_position=torch.arange(n, embeds.shape[1])).logits[0]
    torch.testing.assert_close(rest, full, atol=1e-5, rtol=1e-5)
    assert list(tiny_decoder.prefixes) == [(None, "the fixed start")]
    with tiny_decoder.session(None) as model:  # a second use: the kept cache, copied (the original stays prefix-long)
        again = prefilled(tiny_decoder, model, embeds, ("the fixed start", n), None)
    assert again.get_seq_length() == n and tiny_decoder.prefixes[(None, "the fixed start")].get_seq_length() == n
    tiny_decoder.prefixes.clear()


def test_answers_are_the_same_with_and_without_the_cache(service, tmp_path, tiny_folder):
    from tests.fakes import tiny_lora

    service.create_collection("c")
    (tmp_path / "a.txt").write_text("The keeper lit the lamp at dusk every evening of the year. " * 12)
    service.ingest("c", [tmp_path / "a.txt"])
    adapter = tiny_lora(tmp_path / "lora", tiny_folder, seed=3)

    def answers(cached: bool):
        service.settings.prefix_cache = cached
        out = []
        for mode in ("rag", "lloco", "rag+reader"):
            service.settings.rag_adapter = str(adapter) if mode == "rag+reader" else None
            for question in ("When is the lamp lit?", "Who lights the lamp?"):
                stream = service.ask("c", question, mode=mode, top_k=2)
                out.append((stream.read().text, stream.answer.prompt_tokens))
        return out

    service.decoder.prefixes.clear()
    plain = answers(False)
    assert not service.decoder.prefixes
    cached = answers(True)
    assert cached == plain
    adapters = {key[0] for key in service.decoder.prefixes}
    assert str(adapter) in adapters and None in adapters  # one prefilled start per adapter
    assert answers(True) == plain  # served from the kept caches
    service.decoder.prefixes.clear()
