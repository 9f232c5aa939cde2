"""Local vectors (``pooling='mean'``): a chunk's hidden states averaged over kappa equal windows, as a
compressor option beside the summary tokens: the pooling itself, training, checkpoints, bad input."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from model.compressor import compressor_ident, load_compressor, mean_pooled_hidden_states, save_compressor
from model.errors import InvalidInputError, ModelNotAvailableError
from model.train_compressor import CompressorTrainer, TrainConfig, resolve_config
from tests.test_train_compressor import config, corpus_root  # noqa: F401 - the shared fixtures

CHUNKS = [[5, 6, 7, 8, 9, 10, 11], [12, 13], [20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30]]


def by_hand(decoder, ids: list[int], kappa: int) -> torch.Tensor:
    """The chunk alone (no padding), its hidden states averaged over the windows the docstring names."""
    inner = decoder.base_model.get_decoder()
    with torch.no_grad():
        hidden = inner(inputs_embeds=decoder.embed_ids(ids)[None], use_cache=False).last_hidden_state[0].float()
    n = len(ids)
    rows = []
    for i in range(kappa):
        start = i * n // kappa
        end = max((i + 1) * n // kappa, start + 1)
        rows.append(hidden[start:end].mean(dim=0))
    return torch.stack(rows)  # (kappa, d)


def test_mean_pooling_averages_equal_windows_of_each_chunk_in_a_padded_batch(tiny_decoder):
    kappa = 3  # the 2-token chunk is shorter than kappa: its windows repeat tokens, never average nothing
    with torch.no_grad():
        batch = mean_pooled_hidden_states(tiny_decoder.base_model.get_decoder(),
                                          [tiny_decoder.embed_ids(c) for c in CHUNKS], kappa)
    assert tuple(batch.shape) == (len(CHUNKS), kappa, tiny_decoder.hidden_size)
    assert torch.isfinite(batch).all()
    for row, ids in enumerate(CHUNKS):
        torch.testing.assert_close(batch[row], by_hand(tiny_decoder, ids, kappa), atol=2e-4, rtol=2e-4)
    # windows are local: the 11-token chunk's first vector does not move when its last tokens change
    changed = CHUNKS[2][:-3] + [40, 41, 42]
    with torch.no_grad():
        other = mean_pooled_hidden_states(tiny_decoder.base_model.get_decoder(), [tiny_decoder.embed_ids(changed)], kappa)
    torch.testing.assert_close(other[0, 0], batch[2, 0], atol=2e-4, rtol=2e-4)
    assert not torch.allclose(other[0, -1], batch[2, -1], atol=1e-3)


def test_a_mean_pooling_run_learns_saves_and_loads_as_it_trained(tiny_decoder, config, tmp_path):  # noqa: F811
    mean = replace(config, pooling="mean", lr=5e-3, projection_lr=5e-3, save_every=100, steps=20)
    trainer = CompressorTrainer.create(tiny_decoder, mean, tmp_path / "out")
    batch = trainer.sampler.pairs(0, 2)
    lm, recon = trainer.losses(batch)
    (lm + recon).backward()
    assert trainer.summary.grad is None  # the summary tokens take no part in mean pooling
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in trainer.lora_params)
    assert trainer.projection[0].grad.abs().sum() > 0
    trainer.optimizer.zero_grad(set_to_none=True)
    before = trainer.loss_on(batch)
    for _ in range(20):
        trainer.train_step([batch])
    after = trainer.loss_on(batch)
    assert after["total"] < before["total"] - 0.05, (before, after)
    trainer.save()
    meta = json.loads((tmp_path / "out" / "compressor.json").read_text())
    assert meta["pooling"] == "mean" and meta["training"]["pooling"] == "mean"

    chunks = [p.a for p in trainer.sampler.pairs(100, 3)]
    with torch.no_grad():
        in_training = trainer.summary_vectors(chunks)  # (3, kappa, d)
    loaded = load_compressor(str(tmp_path / "out"), tiny_decoder, kappa=config.kappa)
    assert loaded.pooling == "mean" and "-mean-" in loaded.ident
    assert loaded.ident == compressor_ident(str(tmp_path / "out"), kappa=config.kappa)
    torch.testing.assert_close(torch.stack(loaded.compress(chunks)).float(), in_training, atol=5e-3, rtol=5e-3)
    # the same weights read as summary tokens give other vectors and another ident: collections never mix them
    meta["pooling"] = "tokens"
    (tmp_path / "out" / "compressor.json").write_text(json.dumps(meta))
    as_tokens = load_compressor(str(tmp_path / "out"), tiny_decoder, kappa=config.kappa)
    assert as_tokens.ident != loaded.ident
    assert not torch.allclose(torch.stack(as_tokens.compress(chunks)).float(), in_training, atol=1e-2)


def test_checkpoints_without_a_pooling_keep_their_ident_and_bad_poolings_are_refused(tiny_decoder, tmp_path):
    d = tiny_decoder.hidden_size
    save_compressor(tmp_path / "new", torch.randn(2, d), base="tiny", hidden_size=d)
    ident = compressor_ident(str(tmp_path / "new"), kappa=2)
    meta = json.loads((tmp_path / "new" / "compressor.json").read_text())
    assert meta["pooling"] == "tokens" and "-mean-" not in ident
    del meta["pooling"]  # a checkpoint written before the option: summary tokens, as it was trained
    (tmp_path / "new" / "compressor.json").write_text(json.dumps(meta))
    old = load_compressor(str(tmp_path / "new"), tiny_decoder, kappa=2)
    assert old.pooling == "tokens" and old.ident == ident
    meta["pooling"] = "max"
    (tmp_path / "new" / "compressor.json").write_text(json.dumps(meta))
    with pytest.raises(ModelNotAvailableError, match="pooling 'max'.*tokens, mean"):
        load_compressor(str(tmp_path / "new"), tiny_decoder, kappa=2)


def test_bad_and_changed_poolings_are_refused_before_training(tiny_decoder, config, tmp_path):  # noqa: F811
    with pytest.raises(InvalidInputError, match="pooling"):
        TrainConfig(pooling="max")
    trainer = CompressorTrainer.create(tiny_decoder, replace(config, pooling="mean"), tmp_path / "out")
    trainer.run(stop_at=2)
    with pytest.raises(InvalidInputError, match=r"pooling \(checkpoint 'mean', given 'tokens'\)"):
        resolve_config(tmp_path / "out", {"pooling": "tokens"}, resume=True)
    assert resolve_config(tmp_path / "out", {}, resume=True).pooling == "mean"
