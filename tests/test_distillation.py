"""Reader distillation (issue 10; xRAG's KL term to RAG-mode logits) on the tiny random Llama: the
teacher reads the contexts' text, its targets are stored with the examples, the KL term is zero
only at the teacher, and training on it makes it fall."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from model.errors import InvalidInputError
from model.segment_pairs import IGNORE
from model.train_adapter import AdapterConfig, AdapterTrainer, QAItem, distill_kl, load_items


def _items(decoder, n=8, kappa=4, seed=0) -> list[QAItem]:
    g = torch.Generator().manual_seed(seed)
    d = decoder.hidden_size
    items = []
    for i in range(n):
        texts = [decoder.encode(f"Item {i} is number {i * 7}. It was made in {1900 + i}.")]
        items.append(QAItem(f"what is item {i}?", f"number {i * 7}", "Answer briefly.",
                            [torch.randn(kappa, d, generator=g) * 0.05], "test", texts=texts))
    return items


@pytest.fixture
def config() -> AdapterConfig:
    return AdapterConfig(steps=30, batch_size=8, lr=1e-2, warmup_steps=0, save_every=100, lora_dropout=0.0,
                         distill_weight=1.0, distill_top_k=16)


def test_kl_is_zero_at_the_teacher_and_positive_elsewhere():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(1, 5, 12, generator=g)
    labels = torch.tensor([[IGNORE, IGNORE, 4, 7, 2]])  # positions 1..3 predict the 3 answer tokens
    logp = logits[0, 1:4].log_softmax(-1)  # (3, V)
    top = logp.topk(12, dim=-1)  # k = V: the teacher's whole distribution
    assert float(distill_kl(logits, labels, [(top.indices, top.values)])) == pytest.approx(0.0, abs=1e-6)
    other = torch.randn(1, 5, 12, generator=g)
    assert float(distill_kl(other, labels, [(top.indices, top.values)])) > 0.01
    part = logp.topk(3, dim=-1)  # top-k only: still >= 0 for any student
    assert float(distill_kl(other, labels, [(part.indices, part.values)])) >= 0.0
    with pytest.raises(InvalidInputError, match="teacher targets"):
        distill_kl(logits, labels, [(top.indices[:2], top.values[:2])])


def test_the_teacher_is_the_base_decoder_reading_the_text(tiny_decoder, config, tmp_path):
    from model.prompts import Context, build_prompt, embed_prompt

    trainer = AdapterTrainer.create(tiny_decoder, config, tmp_path / "a", _items(tiny_decoder))
    item = trainer.items[0]
    ids, logp = item.teacher
    answer = tiny_decoder.encode(" " + item.answer) + [tiny_decoder.tokenizer.eos_token_id]
    assert ids.shape == logp.shape == (len(answer), 16)
    # the teacher's first answer token distribution = the plain decoder's next token after the RAG prompt
    parts = build_prompt(tiny_decoder.tokenizer, question=item.question, contexts=[Context(token_ids=item.texts[0])],
                         instruction=item.instruction)
    with torch.no_grad():
        expected = tiny_decoder.base_model(inputs_embeds=embed_prompt(tiny_decoder, parts)).logits[0, -1].log_softmax(-1)
    top = expected.topk(16)
    assert torch.equal(ids[0].long(), top.indices)
    assert torch.allclose(logp[0].float(), top.values, atol=2e-3)  # stored as float16
    # stored with the examples: a resumed run reads the same targets back
    saved = load_items(tmp_path / "a" / "examples.pt")
    assert torch.equal(saved[0].teacher[0], ids) and saved[0].texts == item.texts


def test_a_teacher_adapter_reads_the_text_and_is_unloaded(tiny_decoder, config, tmp_path):
    # distill_teacher: the text reader is the base decoder with that adapter (rag+reader), not the bare base
    from peft import PeftModel

    from model.prompts import Context, build_prompt, embed_prompt

    reader = AdapterTrainer.create(tiny_decoder, replace(config, distill_weight=0.0, steps=5), tmp_path / "reader",
                                   _items(tiny_decoder))
    reader.run()
    trainer = AdapterTrainer.create(tiny_decoder, replace(config, distill_teacher=str(tmp_path / "reader")),
                                    tmp_path / "a", _items(tiny_decoder))
    item = trainer.items[0]
    parts = build_prompt(tiny_decoder.tokenizer, question=item.question, contexts=[Context(token_ids=item.texts[0])],
                         instruction=item.instruction)
    with torch.no_grad():
        embeds = embed_prompt(tiny_decoder, parts)
        with_reader = PeftModel.from_pretrained(tiny_decoder.base_model, str(tmp_path / "reader"))
        expected = with_reader(inputs_embeds=embeds).logits[0, -1].log_softmax(-1)
        with_reader.unload()
        bare = tiny_decoder.base_model(inputs_embeds=embeds).logits[0, -1].log_softmax(-1)
    ids, logp = item.teacher
    assert torch.equal(ids[0].long(), expected.topk(16).indices)
    assert torch.allclose(logp[0].float(), expected.topk(16).values, atol=2e-3)
    assert not torch.allclose(expected, bare, atol=1e-3)  # the adapter changed what the teacher says
    # the teacher is gone and the trained LoRA trains: its parameters are the optimizer's and move
    assert list(trainer.model.peft_config) == ["default"]
    assert trainer.params and all(p.requires_grad for p in trainer.params)
    before = [p.detach().clone() for p in trainer.params]
    trainer.run()
    assert any(not torch.equal(b, p.detach()) for b, p in zip(before, trainer.params))
    with pytest.raises(Exception, match="adapter_config.json"):
        AdapterTrainer.create(tiny_decoder, replace(config, distill_teacher=str(tmp_path / "nowhere")),
                              tmp_path / "b", _items(tiny_decoder))


def test_distillation_loss_falls_and_is_logged(tiny_decoder, config, tmp_path):
    # a reader fine-tuned on answers alone drifts from the text-reading teacher; distilling pulls it back
    plain = AdapterTrainer.create(tiny_decoder, replace(config, distill_weight=0.0), tmp_path / "plain", _items(tiny_decoder))
    plain.run()
    assert "distill" not in json.loads((tmp_path / "plain" / "log.jsonl").read_text().splitlines()[0])
    trainer = AdapterTrainer.create(tiny_decoder, replace(config, distill_weight=50.0), tmp_path / "a",
                                    _items(tiny_decoder), init_from=str(tmp_path / "plain"))
    trainer.run()
    log = [json.loads(line) for line in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    first, last = sum(r["distill"] for r in log[:3]) / 3, sum(r["distill"] for r in log[-3:]) / 3
    assert last < first * 0.7, (first, last)
    assert all(r["loss"] >= 50.0 * r["distill"] for r in log)  # loss = NLL + 50 * KL, both >= 0


def test_distillation_without_context_text_is_refused(tiny_decoder, config, tmp_path):
    items = [replace(i, texts=None) for i in _items(tiny_decoder)]
    with pytest.raises(InvalidInputError, match="context text"):
        AdapterTrainer.create(tiny_decoder, config, tmp_path / "a", items)
    AdapterTrainer.create(tiny_decoder, replace(config, distill_weight=0.0), tmp_path / "b", items)  # plain: fine
    with pytest.raises(InvalidInputError, match="distill_weight"):
        replace(config, distill_weight=-0.5)
