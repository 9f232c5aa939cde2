"""Streaming answers: pieces arrive one by one; the finished answer carries citations and timings."""

from __future__ import annotations

import pytest
import torch


@pytest.mark.parametrize("mode", ["lloco", "rag", "full"])
def test_stream_then_answer(service, tmp_path, mode):
    doc = tmp_path / "d.md"
    doc.write_text("# Bees\n\nHoneybees dance to show where flowers are. " * 10)
    service.create_collection("c")
    service.ingest("c", [doc])
    stream = service.ask("c", "How do bees show flowers?", mode=mode, top_k=2)
    pieces = list(stream)
    answer = stream.answer
    assert answer.text == "".join(pieces).strip()
    assert 0 < answer.generated_tokens <= service.settings.max_new_tokens + 1
    assert answer.mode == mode and answer.prompt_tokens > 0
    assert answer.citations and answer.citations[0].document == "d.md" and answer.citations[0].page == 1
    assert 0 <= answer.retrieval_s <= answer.ttft_s <= answer.total_s
    assert answer.chunk_ids == [c.chunk_id for c in answer.citations]


def test_full_mode_truncates_to_the_window(service, tmp_path):
    doc = tmp_path / "long.txt"
    doc.write_text("word " * 6000)
    service.settings.max_context_tokens = 512
    service.create_collection("c")
    service.ingest("c", [doc])
    answer = service.ask("c", "word?", mode="full").read()
    assert 400 < answer.prompt_tokens <= 512 - service.settings.max_new_tokens  # filled, with room to answer


def test_greedy_answers_are_reproducible(service, tmp_path):
    doc = tmp_path / "d.txt"
    doc.write_text("Coffee was first drunk in Yemen. " * 10)
    service.create_collection("c")
    service.ingest("c", [doc])
    assert service.ask("c", "Where?", mode="rag").read().text == service.ask("c", "Where?", mode="rag").read().text


@pytest.fixture
def private_decoder(tiny_folder):
    """A decoder of its own: adapters and generation settings changed here must not leak."""
    from model.loading import load_decoder

    return load_decoder(tiny_folder, name="tiny", device="cpu", dtype=torch.float32)


def _generate_ids(decoder, embeds, adapter, max_new_tokens, no_repeat=0):
    """transformers' own greedy generation, the reference: its ids without the end token."""
    with decoder.session(adapter) as model:
        out = model.generate(inputs_embeds=embeds, attention_mask=torch.ones(embeds.shape[:2], dtype=torch.long),
                             max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=decoder.tokenizer.pad_token_id, no_repeat_ngram_size=no_repeat)
    ids = out[0].tolist()
    eos = decoder.tokenizer.eos_token_id
    return ids[: ids.index(eos)] if eos in ids else ids


@pytest.mark.parametrize("no_repeat", [0, 3])
@pytest.mark.parametrize("penalty", [None, 1.3])
@pytest.mark.parametrize("cached", [False, True])
@pytest.mark.parametrize("with_adapter", [False, True])
def test_greedy_ids_are_transformers_generate_ids(private_decoder, tiny_folder, tmp_path, with_adapter, cached,
                                                  penalty, no_repeat):
    from model.generation import stream_generate
    from tests.fakes import tiny_lora

    decoder = private_decoder
    if penalty:
        decoder.model.generation_config.repetition_penalty = penalty
    adapter = tiny_lora(tmp_path / "lora", tiny_folder, seed=5) if with_adapter else None
    start = list(range(20, 31))  # the fixed start every prompt shares (its cache is computed once)
    for seed in range(4):
        rest = torch.randint(5, 300, (19,), generator=torch.Generator().manual_seed(seed)).tolist()
        embeds = decoder.embed_ids(start + rest).unsqueeze(0).detach()  # (1, 30, d)
        stream = stream_generate(decoder, embeds, max_new_tokens=12, adapter=adapter,
                                 prefix=("a fixed start", len(start)) if cached else None, no_repeat_ngram=no_repeat)
        text = "".join(stream)
        reference = _generate_ids(decoder, embeds, adapter, 12, no_repeat)  # the same guard as no_repeat_ngram_size
        assert stream.token_ids == reference
        assert text == decoder.tokenizer.decode(reference, skip_special_tokens=True)
        assert stream.n_tokens == len(reference) + (len(reference) < 12)  # the end token counts when it came
    assert bool(decoder.prefixes) == cached


def test_a_repetition_penalty_changes_the_answer(private_decoder):
    """The penalty is applied, not only accepted: on some prompt it changes the greedy ids."""
    from model.generation import stream_generate

    decoder = private_decoder
    prompts = [decoder.embed_ids(torch.randint(5, 300, (30,), generator=torch.Generator().manual_seed(s)).tolist())
               .unsqueeze(0).detach() for s in range(8)]
    before = []
    for e in prompts:
        stream = stream_generate(decoder, e, max_new_tokens=16)
        list(stream)
        before.append(stream.token_ids)
    decoder.model.generation_config.repetition_penalty = 3.0
    after = []
    for e in prompts:
        stream = stream_generate(decoder, e, max_new_tokens=16)
        list(stream)
        after.append(stream.token_ids)
    assert before != after


def test_pieces_stream_token_by_token_and_never_split_a_character(tiny_decoder):
    from model.generation import TextPieces

    text = "naïve café — 東京 at 5 p.m."
    ids = tiny_decoder.encode(text)
    pieces = TextPieces(tiny_decoder.tokenizer)
    out = [pieces.push(i) for i in ids]
    out.append(pieces.flush())
    assert "".join(out) == text
    assert not any("\ufffd" in p for p in out)
    assert sum(1 for p in out if p) > len(text.split())  # finer than words: one piece per token that adds text
    assert "" in out  # the bytes of a multi-byte character are held back until it is whole


def test_the_flat_output_head_gives_the_same_logits(tiny_folder):
    """model.loading.flat_output_head (a torch CPU slow path avoided): the same logits bit for bit on
    1-row and many-row inputs, in float32 and bfloat16, with the weights and state dict untouched."""
    from transformers import AutoModelForCausalLM

    from model.loading import flat_output_head

    for dtype in (torch.float32, torch.bfloat16):
        plain = AutoModelForCausalLM.from_pretrained(tiny_folder, dtype=dtype).eval()
        flat = flat_output_head(AutoModelForCausalLM.from_pretrained(tiny_folder, dtype=dtype).eval())
        assert flat_output_head(flat) is flat and "forward" in vars(flat.get_output_embeddings())
        assert list(flat.state_dict()) == list(plain.state_dict())
        assert flat.get_output_embeddings().weight is flat.get_input_embeddings().weight  # still tied
        for p in (*plain.parameters(), *flat.parameters()):
            p.requires_grad_(False)  # frozen, as peft leaves them
        for n in (1, 7):
            embeds = torch.randn(1, n, plain.config.hidden_size, generator=torch.Generator().manual_seed(n)).to(dtype)
            with torch.inference_mode():
                for keep in (0, 1):
                    want = plain(inputs_embeds=embeds, logits_to_keep=keep).logits
                    got = flat(inputs_embeds=embeds, logits_to_keep=keep).logits
                    assert got.shape == want.shape and torch.equal(got, want)


def test_a_stream_read_from_many_threads_and_one_abandoned_release_the_decoder(private_decoder):
    """A web server's thread pool calls ``next`` from different threads; a client may go away
    mid-answer. Either way the answer is whole and the decoder's lock is free afterwards."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from model.generation import stream_generate

    decoder = private_decoder
    embeds = decoder.embed_ids(list(range(40, 70))).unsqueeze(0).detach()
    whole = stream_generate(decoder, embeds, max_new_tokens=8)
    expected = list(whole)
    assert whole.n_tokens >= 1

    stream = iter(stream_generate(decoder, embeds, max_new_tokens=8))
    pieces = []
    while True:
        with ThreadPoolExecutor(max_workers=1) as pool:  # a fresh thread for every next()
            piece = pool.submit(next, stream, None).result()
        if piece is None:
            break
        pieces.append(piece)
    assert pieces == expected

    def lock_is_free() -> bool:  # probed from another thread, which releases what it takes
        got = []

        def probe() -> None:
            taken = decoder.lock.acquire(blocking=False)
            if taken:
                decoder.lock.release()
            got.append(taken)

        t = threading.Thread(target=probe)
        t.start()
        t.join()
        return got[0]

    assert lock_is_free()
    abandoned = iter(stream_generate(decoder, embeds, max_new_tokens=64))
    next(abandoned, None)
    abandoned.close()  # the consumer goes away after one piece: the generation stops, the lock is freed
    assert lock_is_free()


def test_no_repeated_ngram_stops_a_loop_and_bans_exactly_the_repeating_tokens(private_decoder):
    """Issue 27: greedy RAG repeated a line to the length cap; no 3-gram twice stops it."""
    from model.generation import repeated_ngram_ends, stream_generate

    assert repeated_ngram_ends([1, 2, 3, 1, 2], 3) == {3} and repeated_ngram_ends([1, 2, 1, 2, 1], 2) == {2}
    assert repeated_ngram_ends([1, 2, 3], 0) == set() and repeated_ngram_ends([4], 3) == set()
    decoder = private_decoder
    looped = 0
    for seed in range(6):
        e = decoder.embed_ids(torch.randint(5, 300, (30,), generator=torch.Generator().manual_seed(seed)).tolist())
        plain, guarded = (stream_generate(decoder, e.unsqueeze(0).detach(), max_new_tokens=40, no_repeat_ngram=n)
                          for n in (0, 3))
        list(plain), list(guarded)
        grams = [tuple(guarded.token_ids[i:i + 3]) for i in range(len(guarded.token_ids) - 2)]
        assert len(grams) == len(set(grams))  # no 3-gram twice
        looped += len({tuple(plain.token_ids[i:i + 3]) for i in range(len(plain.token_ids) - 2)}) < len(plain.token_ids) - 2
    assert looped  # the random decoder does loop without the guard: the test can fail


def test_an_answer_may_not_end_where_may_end_says_no(private_decoder):
    from model.generation import end_token_ids, stream_generate

    decoder = private_decoder
    stop = end_token_ids(decoder.base_model, decoder.tokenizer)
    e = decoder.embed_ids(list(range(40, 70))).unsqueeze(0).detach()
    seen = []
    stream = stream_generate(decoder, e, max_new_tokens=10, may_end=lambda text: seen.append(text) or False)
    list(stream)
    assert stream.n_tokens == 10 and not stop & set(stream.token_ids)  # never ended: ran to the cap
    assert seen[0] == "" and len(seen) == 10  # asked before each token, with the answer so far


def test_a_number_is_not_cut_at_its_decimal_point_when_the_sources_continue_it():
    from app.core.answerers import decimals_kept

    may_end = decimals_kept(["Organic revenue growth 14.3% in the quarter; net revenue $1,234.5 million."])
    assert not may_end("14.") and not may_end("Organic growth was 14.") and not may_end("$1,234.")
    assert may_end("14.3%") and may_end("14.3.") and may_end("The lighthouse was completed in 1759.")
    assert may_end("") and may_end("14") and may_end("It grew.")
    assert decimals_kept([])("14.")  # nothing read says more: the period may end it


def test_each_token_keeps_its_log_probability_under_the_decoder(private_decoder):
    """Issue 23: the confidence reads the decoder's own log p of each chosen token (the end included)."""
    from model.generation import stream_generate

    decoder = private_decoder
    e = decoder.embed_ids(list(range(40, 70))).unsqueeze(0).detach()
    stream = stream_generate(decoder, e, max_new_tokens=6)
    list(stream)
    assert len(stream.token_logprobs) == stream.n_tokens and all(lp <= 0 for lp in stream.token_logprobs)
    assert stream.capped == (len(stream.token_ids) == 6)
    with decoder.session(None) as model:  # the first token's log p is that of a plain forward pass
        logits = model(inputs_embeds=e).logits[0, -1].float()
    first = int(logits.argmax())
    assert stream.token_logprobs[0] == pytest.approx(float(torch.log_softmax(logits, -1)[first]), abs=1e-4)
