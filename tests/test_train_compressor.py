"""Compressor training on the tiny random Llama: learning, gradients, checkpoints, resume, eval, CLI."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from model.compressor import load_compressor, summary_hidden_states
from model.corpus import is_heldout
from model.errors import InvalidInputError, NotFoundError
from model.segment_pairs import CorpusTooSmallError
from model import train_state as ts
from model.train_compressor import CompressorTrainer, TrainConfig, resolve_config
from model.train_state import lr_factor
from tests.cli_runner import flat, run_cli
from tests.fakes import CORPUS

WORDS = CORPUS.split()


@pytest.fixture(scope="module")
def corpus_root(tmp_path_factory) -> Path:
    """40 small essays (needle/PaulGrahamEssays layout), some of them held out."""
    root = tmp_path_factory.mktemp("corpus")
    folder = root / "needle" / "PaulGrahamEssays"
    folder.mkdir(parents=True)
    for i in range(40):
        words = [WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(60)]
        (folder / f"essay{i:02d}.txt").write_text(" ".join(words), encoding="utf-8")
    assert any(is_heldout(f"essays/essay{i:02d}") for i in range(40))
    return root


@pytest.fixture
def config(corpus_root) -> TrainConfig:
    return TrainConfig(sources=("essays",), data_root=str(corpus_root), steps=4, kappa=2, min_segment=8, max_segment=16,
                       next_segment=8, batch_size=2, warmup_steps=0, save_every=2)


def test_a_fixed_batch_is_learned(tiny_decoder, config, tmp_path):
    trainer = CompressorTrainer.create(tiny_decoder, replace(config, steps=30, lr=5e-3, summary_lr=2e-2, save_every=100),
                                       tmp_path / "out")
    batch = trainer.sampler.pairs(0, 2)
    before = trainer.loss_on(batch)
    for _ in range(30):
        trainer.train_step([batch])
    after = trainer.loss_on(batch)
    # a frozen *random* 2-layer decoder can only be steered so far by 2 prefix vectors: ~0.3 nats here
    assert after["lm"] < before["lm"] - 0.1, (before, after)
    assert after["recon"] < before["recon"] and after["total"] < before["total"] - 0.1
    log = [json.loads(line) for line in (tmp_path / "out" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, 31))
    assert {"step", "lm", "recon", "total", "lr", "tokens_seen", "elapsed_s"} <= set(log[0])


def test_only_summary_embeddings_and_lora_train_and_the_decoder_stays_frozen(tiny_decoder, config, tmp_path):
    served = {k: v.clone() for k, v in tiny_decoder.base_model.state_dict().items()}
    trainer = CompressorTrainer.create(tiny_decoder, config, tmp_path / "out")
    base = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if "lora_" not in n}
    summary_before = trainer.summary.detach().clone()
    lm, recon = trainer.losses(trainer.micro_batches(0)[0])
    (lm + recon).backward()
    with_grad = {n for n, p in trainer.model.named_parameters() if p.grad is not None}
    assert with_grad and all("lora_" in n for n in with_grad)
    assert {n for n, p in trainer.model.named_parameters() if p.requires_grad} == with_grad
    assert trainer.summary.grad is not None and trainer.summary.grad.abs().sum() > 0
    assert any(p.grad.abs().sum() > 0 for n, p in trainer.model.named_parameters() if "lora_B" in n)
    trainer.optimizer.zero_grad(set_to_none=True)
    for _ in range(2):
        trainer.train_step()
    for name, param in trainer.model.named_parameters():
        if "lora_" not in name:
            assert torch.equal(param, base[name]), name
    for key, value in tiny_decoder.base_model.state_dict().items():
        assert torch.equal(value, served[key]), key
    assert not torch.equal(trainer.summary.detach(), summary_before)


def test_training_and_inference_compute_the_same_summary_vectors(tiny_decoder, config, tmp_path):
    trainer = CompressorTrainer.create(tiny_decoder, replace(config, lr=1e-2), tmp_path / "out")
    trainer.run(stop_at=2)  # saves at step 2
    out = tmp_path / "out"
    assert {"compressor.json", "summary_embeddings.safetensors", "lora", "trainer_state.pt", "log.jsonl",
            "loss.png"} <= {p.name for p in out.iterdir()}
    meta = json.loads((out / "compressor.json").read_text())
    assert meta["kappa"] == 2 and meta["trained_steps"] == 2 and meta["training"]["sources"] == ["essays"]
    chunks = [p.a for p in trainer.sampler.pairs(100, 3)]
    with torch.no_grad():
        in_training = trainer.summary_vectors(chunks)  # LoRA unmerged, (3, kappa, d)
        frozen_base = summary_hidden_states(tiny_decoder.base_model.get_decoder(),
                                            [tiny_decoder.embed_ids(c) for c in chunks], trainer.summary)
    loaded = load_compressor(str(out), tiny_decoder, kappa=2)  # LoRA merged into a copy
    assert loaded.trained and loaded.runner is not tiny_decoder
    torch.testing.assert_close(loaded.summary_embeddings, trainer.summary.detach())
    vectors = torch.stack(loaded.compress(chunks)).float()
    torch.testing.assert_close(vectors, in_training, atol=5e-3, rtol=5e-3)
    assert not torch.allclose(frozen_base, in_training, atol=1e-3)  # the LoRA matters


def test_resume_continues_exactly_like_an_uninterrupted_run(tiny_decoder, config, tmp_path):
    whole = CompressorTrainer.create(tiny_decoder, config, tmp_path / "whole")
    records: list[dict] = []
    whole.run(on_step=records.append)
    broken = CompressorTrainer.create(tiny_decoder, config, tmp_path / "broken")
    broken.run(stop_at=3)  # checkpoint at step 2, then step 3 is lost
    assert len((tmp_path / "broken" / "log.jsonl").read_text().splitlines()) == 3
    resumed = CompressorTrainer.create(tiny_decoder, config, tmp_path / "broken", resume=True)
    assert resumed.step == 2
    assert len((tmp_path / "broken" / "log.jsonl").read_text().splitlines()) == 2
    again: list[dict] = []
    resumed.run(on_step=again.append)
    assert [r["step"] for r in again] == [3, 4]
    for ours, theirs in zip(again, records[2:], strict=True):
        for key in ("lm", "recon", "total", "lr", "tokens_seen"):
            assert ours[key] == pytest.approx(theirs[key], abs=1e-5), key
    torch.testing.assert_close(resumed.summary.detach(), whole.summary.detach())


def test_resume_settings_are_checked(config, tmp_path, tiny_decoder):
    out = tmp_path / "run"
    with pytest.raises(NotFoundError, match="nothing to resume"):
        resolve_config(out, {}, resume=True)
    CompressorTrainer.create(tiny_decoder, config, out).run(stop_at=2)
    with pytest.raises(InvalidInputError, match="already holds a compressor checkpoint .step 2.*--resume"):
        resolve_config(out, {"steps": 4}, resume=False)
    with pytest.raises(InvalidInputError, match="kappa .checkpoint 2, given 3."):
        resolve_config(out, {"kappa": 3}, resume=True)
    assert resolve_config(out, {"save_every": 1}, resume=True) == replace(config, save_every=1)
    with pytest.raises(InvalidInputError, match="--steps 1 is before the checkpoint's step 2"):
        resolve_config(out, {"steps": 1}, resume=True)


def test_resume_with_more_steps_extends_the_schedule(config, tmp_path, tiny_decoder):
    out = tmp_path / "run"
    CompressorTrainer.create(tiny_decoder, config, out).run()  # all config.steps (4)
    longer = resolve_config(out, {"steps": 8}, resume=True)
    assert longer == replace(config, steps=8)
    trainer = CompressorTrainer.create(tiny_decoder, longer, out, resume=True)
    assert trainer.step == 4
    # the stretched schedule: the learning rate at step 4 is the 8-step schedule's, above the end of the 4-step one
    assert trainer.scheduler.get_last_lr()[1] == pytest.approx(longer.lr * lr_factor(longer)(4))
    assert lr_factor(longer)(4) > lr_factor(config)(4)
    records: list[dict] = []
    trainer.run(on_step=records.append)
    assert [r["step"] for r in records] == [5, 6, 7, 8] and ts.read_state(out)["step"] == 8
    assert [r["step"] for r in ts.read_log(out)] == list(range(1, 9))
    # resuming a finished run changes nothing (a script can re-run its stages)
    done = CompressorTrainer.create(tiny_decoder, resolve_config(out, {"steps": 8}, resume=True), out, resume=True)
    done.run(on_step=records.append)
    assert len(records) == 4 and ts.read_state(out)["step"] == 8


def test_too_small_and_empty_corpora_are_refused(tiny_decoder, config, tmp_path):
    folder = tmp_path / "small" / "needle" / "PaulGrahamEssays"
    folder.mkdir(parents=True)
    small = replace(config, data_root=str(tmp_path / "small"))
    with pytest.raises(CorpusTooSmallError, match="0 documents, 0 tokens"):
        CompressorTrainer.create(tiny_decoder, small, tmp_path / "out")
    (folder / "one.txt").write_text("The lighthouse keeper lit the lamp.")
    with pytest.raises(CorpusTooSmallError, match="training corpus too small: 1 documents"):
        CompressorTrainer.create(tiny_decoder, small, tmp_path / "out")
    with pytest.raises(InvalidInputError, match="batch_size"):
        replace(config, batch_size=0)


def test_eval_reports_finite_numbers_for_untrained_and_trained(tiny_decoder, config, tmp_path):
    from model.eval_compressor import evaluate_compressor, open_compressor, spec_for

    CompressorTrainer.create(tiny_decoder, config, tmp_path / "out").run(stop_at=2)
    for source in ("untrained", str(tmp_path / "out")):
        compressor, training = open_compressor(source, tiny_decoder, kappa=2)
        spec = spec_for(training, {"pairs": 3, "batch_size": 2, "sources": ("essays",), "data_root": config.data_root,
                                   "min_segment": 8, "max_segment": 16, "next_segment": 8})
        result = evaluate_compressor(tiny_decoder, compressor, spec)
        assert result["trained"] == (source != "untrained") and result["pairs"] == 3 and result["kappa"] == 2
        for key in ("ppl_none", "ppl_summary", "ppl_text", "recon_ppl", "compression", "a_tokens_mean"):
            assert math.isfinite(result[key]) and result[key] > 0, key
        assert 0.0 <= result["recon_accuracy"] <= 1.0 and 0.0 <= result["recon_accuracy_none"] <= 1.0
        assert math.isfinite(result["recon_ppl_none"])
        assert result["b_tokens_scored"] == 3 * 7  # tokens 2..8 of each B
        assert math.isfinite(result["gap_closed"]) or result["ppl_text"] >= result["ppl_none"]
        if math.isfinite(result["gap_closed"]):  # the two shares of the same gap, from the same perplexities
            none, summary, text = (math.log(result[k]) for k in ("ppl_none", "ppl_summary", "ppl_text"))
            assert result["gap_closed"] == pytest.approx((none - summary) / (none - text))
            none, summary, text = (result[k] for k in ("ppl_none", "ppl_summary", "ppl_text"))
            assert result["gap_closed_ppl"] == pytest.approx((none - summary) / (none - text))


def test_cli_trains_resumes_and_evaluates(service, monkeypatch, capsys, corpus_root, tmp_path):
    def run(*args: str) -> tuple[int, str]:
        code, stdout, stderr = run_cli(monkeypatch, capsys, *args, service=service)
        return code, flat(stdout + stderr)

    out = str(tmp_path / "ckpt")
    common = ["--sources", "essays", "--data-root", str(corpus_root), "--min-segment", "8", "--max-segment", "16",
              "--next-segment", "8", "--batch-size", "2"]
    code, text = run("train", "compressor", "--out", out, "--steps", "2", "--save-every", "1", *common)
    assert code == 0, text
    assert "essays" in text and "held out" in text and "step 2/2" in text and "s/step" in text
    assert json.loads((tmp_path / "ckpt" / "compressor.json").read_text())["kappa"] == service.settings.summary_tokens
    code, text = run("train", "compressor", "--out", out, "--steps", "2", *common)
    assert code == 2 and "already holds a compressor checkpoint" in text
    code, text = run("train", "compressor", "--out", out, "--resume")
    assert code == 0 and "resuming at step 2 of 2" in text, text
    code, text = run("train", "eval-compressor", "--checkpoint", out, "--pairs", "2")
    assert code == 0, text
    assert "perplexity of B" in text and "gap closed" in text and "reconstruction of A" in text and "without S" in text
    assert "fact probe:" in text
