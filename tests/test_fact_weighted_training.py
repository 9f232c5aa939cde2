"""Compressor training levers of issue 10 on the tiny random Llama: reconstruction weighted on
numbers and names (fact_weight), and continuing from another checkpoint's weights (init_from)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from model.errors import InvalidInputError, NotFoundError
from model.fact_probe import fact_tokens, fact_weights
from model.segment_pairs import IGNORE, token_scores, weighted_nll
from model.train_compressor import CompressorTrainer, TrainConfig
from tests.fakes import CORPUS

WORDS = CORPUS.split()


@pytest.fixture(scope="module")
def corpus_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    folder = root / "needle" / "PaulGrahamEssays"
    folder.mkdir(parents=True)
    for i in range(40):
        words = [WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(50)]
        words[5::9] = [f"In {1900 + i * 3 + j} John Smeaton paid {i * 17 + j}.5%" for j in range(len(words[5::9]))]
        (folder / f"essay{i:02d}.txt").write_text(" ".join(words), encoding="utf-8")
    return root


@pytest.fixture
def config(corpus_root) -> TrainConfig:
    return TrainConfig(sources=("essays",), data_root=str(corpus_root), steps=4, kappa=2, min_segment=8, max_segment=16,
                       next_segment=8, batch_size=2, warmup_steps=0, save_every=2)


def test_weighted_nll_is_the_plain_mean_under_equal_weights_and_follows_the_weights():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 6, 11, generator=g)
    labels = torch.tensor([[IGNORE, IGNORE, 3, 4, 5, IGNORE], [IGNORE, 1, 2, 3, 4, 5]])
    nll, n, _ = token_scores(logits, labels)
    assert torch.allclose(weighted_nll(logits, labels, torch.ones(2, 6)), nll / n)
    # all the weight on one label: the loss is that token's NLL alone
    weights = torch.zeros(2, 6)
    weights[1, 3] = 5.0
    one = torch.nn.functional.cross_entropy(logits[1, 2:3], labels[1, 3:4])
    assert torch.allclose(weighted_nll(logits, labels, weights), one)
    # a weight on an unscored position changes nothing
    heavy = torch.ones(2, 6)
    heavy[0, 0] = 100.0
    assert torch.allclose(weighted_nll(logits, labels, heavy), nll / n)


def test_fact_weights_boost_exactly_the_tokens_of_numbers_and_names(tiny_decoder):
    ids = tiny_decoder.encode("the bridge was built by John Smeaton in 1759 for 14.3% less")
    weights = fact_weights(tiny_decoder.tokenizer, ids, boost=4.0)
    boosted = {i for positions in fact_tokens(tiny_decoder.tokenizer, ids) for i in positions}
    assert boosted and len(boosted) < len(ids)
    assert [w for i, w in enumerate(weights) if i in boosted] == [5.0] * len(boosted)
    assert [w for i, w in enumerate(weights) if i not in boosted] == [1.0] * (len(ids) - len(boosted))
    assert fact_weights(tiny_decoder.tokenizer, ids, boost=0.0) == [1.0] * len(ids)


def test_fact_weight_changes_the_reconstruction_loss_not_the_next_segment_loss(tiny_decoder, config, tmp_path):
    plain = CompressorTrainer.create(tiny_decoder, config, tmp_path / "plain")
    weighted = CompressorTrainer.create(tiny_decoder, replace(config, fact_weight=9.0), tmp_path / "weighted")
    batch = plain.sampler.pairs(0, 2)
    assert any(fact_tokens(tiny_decoder.tokenizer, p.a) for p in batch)  # the batch has facts to weigh
    a, b = plain.loss_on(batch), weighted.loss_on(batch)
    assert a["lm"] == pytest.approx(b["lm"], abs=1e-6)  # same seed, same weights: only the recon mean differs
    assert abs(a["recon"] - b["recon"]) > 1e-4


def _fact_nll(trainer: CompressorTrainer, pairs) -> float:
    """Mean reconstruction NLL over the tokens of A's numbers and names only."""
    from model.segment_pairs import summary_then_repeat

    weights = [[0.0 if w == 1.0 else 1.0 for w in fact_weights(trainer.decoder.tokenizer, p.a, boost=1.0)] for p in pairs]
    with torch.no_grad():
        summary = trainer.summary_vectors([p.a for p in pairs])
        rows = [summary_then_repeat(summary[i], trainer.prompt_ids, p.a, trainer._embed) for i, p in enumerate(pairs)]
        return float(trainer._frozen_score(rows, weights))


def test_fact_weighting_lowers_the_loss_on_facts_more_than_plain_reconstruction(tiny_decoder, config, tmp_path):
    arms = {}
    for name, boost in (("plain", 0.0), ("facts", 9.0)):
        trainer = CompressorTrainer.create(tiny_decoder, replace(config, steps=25, lr=5e-3, summary_lr=2e-2, save_every=100,
                                                                 fact_weight=boost), tmp_path / name)
        batch = trainer.sampler.pairs(0, 2)
        before = _fact_nll(trainer, batch)
        for _ in range(25):
            trainer.train_step([batch])
        arms[name] = (before, _fact_nll(trainer, batch))
    assert arms["plain"][0] == pytest.approx(arms["facts"][0])  # the same start
    assert arms["facts"][1] < arms["plain"][1], arms  # weighting buys more on the facts


def test_init_from_starts_at_the_checkpoint_weights_with_a_fresh_schedule(tiny_decoder, config, tmp_path):
    first = CompressorTrainer.create(tiny_decoder, replace(config, steps=2), tmp_path / "first")
    first.run()
    later = CompressorTrainer.create(tiny_decoder, replace(config, steps=3, seed=1, init_from=str(tmp_path / "first")),
                                     tmp_path / "later")
    assert later.step == 0
    assert torch.equal(later.summary, first.summary)
    assert all(torch.equal(a, b) for a, b in zip(later.projection, first.projection, strict=True))
    chunks = [p.a for p in first.sampler.pairs(0, 2)]
    first.model.eval(), later.model.eval()
    with torch.no_grad():
        assert torch.allclose(first.summary_vectors(chunks), later.summary_vectors(chunks), atol=1e-6)
    fresh = CompressorTrainer.create(tiny_decoder, replace(config, seed=1), tmp_path / "fresh")
    assert not torch.equal(fresh.summary_vectors(chunks), later.summary_vectors(chunks))
    later.run()
    assert later.step == 3


def test_init_from_refuses_a_missing_or_misshapen_checkpoint(tiny_decoder, config, tmp_path):
    with pytest.raises(NotFoundError, match="not a lloco compressor checkpoint"):
        CompressorTrainer.create(tiny_decoder, replace(config, init_from=str(tmp_path / "nowhere")), tmp_path / "a")
    CompressorTrainer.create(tiny_decoder, replace(config, steps=1), tmp_path / "k2").run()
    with pytest.raises(InvalidInputError, match="kappa"):
        CompressorTrainer.create(tiny_decoder, replace(config, kappa=3, init_from=str(tmp_path / "k2")), tmp_path / "b")


def test_init_from_a_smaller_kappa_repeats_its_summary_tokens(tiny_decoder, config, tmp_path):
    CompressorTrainer.create(tiny_decoder, replace(config, steps=1), tmp_path / "k2").run()
    small = CompressorTrainer.create(tiny_decoder, replace(config, init_from=str(tmp_path / "k2")), tmp_path / "same")
    wide = CompressorTrainer.create(tiny_decoder, replace(config, kappa=2 * config.kappa, init_from=str(tmp_path / "k2")),
                                    tmp_path / "wide")
    learned, k = small.summary.detach(), config.kappa  # (kappa0, d)
    assert wide.summary.shape == (2 * k, learned.shape[1])
    for copy in (wide.summary[:k], wide.summary[k:]):  # each copy: the learned tokens, told apart by a little noise
        assert torch.allclose(copy, learned, atol=0.1 * float(learned.std()))
        assert not torch.equal(copy, learned)
    assert not torch.equal(wide.summary[:k], wide.summary[k:])
    assert all(torch.equal(a, b) for a, b in zip(wide.projection, small.projection, strict=True))
    wide.run()  # trains, saves a kappa-4 checkpoint that a later kappa-4 run resumes exactly
    again = CompressorTrainer.create(tiny_decoder, replace(config, kappa=2 * k, init_from=str(tmp_path / "wide")),
                                     tmp_path / "again")
    assert torch.equal(again.summary, wide.summary)


def test_a_negative_fact_weight_is_refused(config):
    with pytest.raises(InvalidInputError, match="fact_weight"):
        replace(config, fact_weight=-1.0)
